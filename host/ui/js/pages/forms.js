// Forms: build typed fields (nested OBJECT and ARRAY too), import and
// export a form as JSON, see each version's status and program step by
// step, compare two versions' programs, approve, regenerate with feedback.

import { h, put, field, dialog } from '../dom.js';
import { gql } from '../api.js';
import * as Q from '../queries.js';
import { badge, failure } from '../ui.js';
import { diffLines } from '../diff.js';

const TYPES = ['TEXT', 'NUMBER', 'INTEGER', 'BOOLEAN', 'DATE', 'ENUM', 'OBJECT', 'ARRAY'];

/** Keeps only what FieldInput takes (imported JSON may carry more). */
export function toInput(f) {
  const out = { name: String(f.name ?? ''), type: String(f.type ?? 'TEXT').toUpperCase() };
  for (const k of ['description', 'hints', 'unit']) if (f[k]) out[k] = String(f[k]);
  if (Array.isArray(f.options) && f.options.length) out.options = f.options.map(String);
  if (f.multiple) out.multiple = true;
  if (f.required) out.required = true;
  if (Array.isArray(f.fields) && f.fields.length) out.fields = f.fields.map(toInput);
  return out;
}

/** One field's editor; nested editors for OBJECT and ARRAY. */
function fieldEditor(f, onRemove) {
  const name = h('input', { type: 'text', value: f.name || '', required: true, pattern: '[A-Za-z_][A-Za-z0-9_]*' });
  const type = h('select', {}, TYPES.map((t) => h('option', { value: t, selected: t === (f.type || 'TEXT') }, t)));
  const description = h('input', { type: 'text', value: f.description || '' });
  const hints = h('input', { type: 'text', value: f.hints || '' });
  const unit = h('input', { type: 'text', value: f.unit || '' });
  const options = h('input', { type: 'text', value: (f.options || []).join(', ') });
  const multiple = h('input', { type: 'checkbox', checked: !!f.multiple });
  const required = h('input', { type: 'checkbox', checked: !!f.required });
  const children = [];
  const sub = h('div', { class: 'subfields' });
  const enumBox = h('div', { class: 'enum' }, field('Options', options, 'Comma-separated.'),
    h('label', { class: 'check' }, multiple, ' Several options'));
  const unitBox = field('Unit', unit);
  const addSub = h('button', { type: 'button', onclick: () => addChild({}) }, 'Add sub-field');
  const subBox = h('div', { class: 'nested' }, sub, addSub);
  function addChild(c) {
    const ed = fieldEditor(c, () => { children.splice(children.indexOf(ed), 1); ed.el.remove(); });
    children.push(ed);
    sub.appendChild(ed.el);
  }
  (f.fields || []).forEach(addChild);
  function sync() {
    const t = type.value;
    enumBox.hidden = t !== 'ENUM';
    unitBox.hidden = t !== 'NUMBER' && t !== 'INTEGER';
    subBox.hidden = t !== 'OBJECT' && t !== 'ARRAY';
  }
  type.addEventListener('change', sync);
  sync();
  const el = h('fieldset', { class: 'field-editor' },
    h('legend', {}, 'Field'),
    h('div', { class: 'cols' }, field('Field name', name), field('Type', type), field('Description', description)),
    h('div', { class: 'cols' }, field('Hints', hints), unitBox, h('label', { class: 'check' }, required, ' Required')),
    enumBox, subBox,
    h('button', { type: 'button', class: 'link danger', onclick: onRemove }, 'Remove field'));
  return {
    el,
    value() {
      const t = type.value;
      return toInput({
        name: name.value.trim(), type: t, description: description.value.trim(), hints: hints.value.trim(),
        unit: (t === 'NUMBER' || t === 'INTEGER') ? unit.value.trim() : '',
        options: t === 'ENUM' ? options.value.split(',').map((s) => s.trim()).filter(Boolean) : [],
        multiple: t === 'ENUM' && multiple.checked, required: required.checked,
        fields: (t === 'OBJECT' || t === 'ARRAY') ? children.map((c) => c.value()) : [],
      });
    },
  };
}

/** The builder: name, description, fields; `save(form)` persists. */
function builder(initial, save, cancel) {
  const name = h('input', { type: 'text', value: initial.name || '', required: true });
  const description = h('textarea', { rows: 2, value: initial.description || '' });
  const list = h('div', {});
  const editors = [];
  const status = h('div', {});
  function add(f) {
    const ed = fieldEditor(f, () => { editors.splice(editors.indexOf(ed), 1); ed.el.remove(); });
    editors.push(ed);
    list.appendChild(ed.el);
    return ed;
  }
  (initial.fields || []).forEach(add);
  return h('form', {
    class: 'card builder',
    onsubmit: async (e) => {
      e.preventDefault();
      put(status);
      try {
        await save({ name: name.value.trim(), description: description.value.trim() || null, fields: editors.map((x) => x.value()) });
      } catch (err) { put(status, failure(err)); }
    },
  },
  field('Form name', name), field('Form description', description),
  list,
  h('div', { class: 'actions' },
    h('button', { type: 'button', onclick: () => add({}).el.querySelector('input').focus() }, 'Add field')),
  status,
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save'),
    h('button', { type: 'button', onclick: cancel }, 'Cancel')));
}

function programView(program) {
  if (!program) return h('p', { class: 'muted' }, 'No program.');
  return h('ol', { class: 'steps' }, (program.steps || []).map((s) => h('li', {},
    h('h4', {}, s.id, ' ', h('span', { class: 'muted' }, s.kind === 'list' ? `(a list at ${s.path})` : '')),
    s.depends_on?.length ? h('p', { class: 'muted' }, 'After: ', s.depends_on.join(', ')) : null,
    h('ul', {}, (s.fields || []).map((f) => h('li', {}, h('code', {}, f.path || f.name), ` ${f.type || ''}`,
      f.required ? ' · required' : '', f.unit ? ` · ${f.unit}` : '', f.options?.length ? ` · ${f.options.join(' | ')}` : ''))),
    s.instructions ? h('details', {}, h('summary', {}, 'Instructions'), h('pre', { class: 'wrap' }, s.instructions)) : null)));
}

async function compare(form) {
  const versions = form.versions.filter((v) => v.programHash);
  if (versions.length < 2) return;
  const pick = (label, idx) => h('select', {}, versions.map((v, i) => h('option', { value: v.id, selected: i === idx }, `v${v.number}`)));
  const a = pick('From', versions.length - 2);
  const b = pick('To', versions.length - 1);
  const out = h('div', { class: 'diff' });
  async function run() {
    const [x, y] = await Promise.all([a.value, b.value].map((id) => gql(Q.FORM_VERSION, { id })));
    const lines = diffLines(JSON.stringify(x.formVersion.program, null, 2), JSON.stringify(y.formVersion.program, null, 2));
    put(out, h('pre', {}, lines.map(([k, l]) => h('span', { class: k === '+' ? 'add' : k === '-' ? 'del' : 'same' }, `${k} ${l}\n`))));
  }
  a.addEventListener('change', run);
  b.addEventListener('change', run);
  await dialog(`Compare versions of ${form.name}`, (close) => {
    run().catch((e) => put(out, failure(e)));
    return h('div', {}, h('div', { class: 'cols' }, field('From', a), field('To', b)), out,
      h('div', { class: 'actions' }, h('button', { onclick: () => close() }, 'Close')));
  });
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const a = h('a', { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export async function render(el, { project, edit }) {
  const top = h('div', { class: 'row-head' });
  const work = h('div', {});
  const list = h('div', {});
  put(el, top, work, list);

  async function load() {
    let forms;
    try { forms = (await gql(Q.FORMS, { id: project.id })).project.forms; } catch (e) { put(list, failure(e)); return; }
    if (!forms.length) { put(list, h('p', { class: 'muted' }, 'No forms yet.')); return; }
    put(list, forms.map((f) => formCard(f)));
  }

  function formCard(f) {
    const latest = f.versions[f.versions.length - 1];
    const detail = h('div', {});
    return h('article', { class: 'card', 'aria-label': f.name },
      h('h3', {}, f.name), f.description ? h('p', { class: 'muted' }, f.description) : null,
      h('table', { class: 'grid compact' },
        h('caption', {}, 'Versions'),
        h('thead', {}, h('tr', {}, ['Version', 'Status', 'Program'].map((c) => h('th', { scope: 'col' }, c)),
          h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
        h('tbody', {}, [...f.versions].reverse().map((v) => h('tr', {},
          h('th', { scope: 'row' }, `v${v.number}`),
          h('td', {}, badge(v.status), v.error ? h('div', { class: 'why' }, v.error) : null, v.feedback ? h('div', { class: 'muted' }, `Feedback: ${v.feedback}`) : null),
          h('td', {}, v.programHash ? h('code', { title: v.programHash }, v.programHash.slice(0, 12)) : '—'),
          h('td', {}, h('div', { class: 'actions small' },
            h('button', { onclick: () => showProgram(v, detail) }, 'Program'),
            edit && v.status === 'AWAITING_REVIEW' ? h('button', { class: 'primary', onclick: () => approve(v) }, 'Approve') : null,
            edit && v.programHash ? h('button', { onclick: () => regenerate(v) }, 'Regenerate') : null)))))),
      h('div', { class: 'actions' },
        edit ? h('button', { onclick: () => openBuilder(f, latest) }, 'Edit fields') : null,
        h('button', { onclick: () => download(`${f.name}.json`, JSON.stringify({ name: f.name, description: f.description, fields: latest.fields }, null, 2)) }, 'Export JSON'),
        f.versions.length > 1 ? h('button', { onclick: () => compare(f) }, 'Compare versions') : null),
      detail);
  }

  async function showProgram(v, into) {
    try {
      const d = await gql(Q.FORM_VERSION, { id: v.id });
      put(into, h('h4', {}, `Program of v${v.number}`), programView(d.formVersion.program));
    } catch (e) { put(into, failure(e)); }
  }

  async function approve(v) {
    try { await gql(Q.APPROVE_FORM_VERSION, { id: v.id }); } catch (e) { put(work, failure(e)); return; }
    put(work);
    load();
  }

  async function regenerate(v) {
    await dialog('Regenerate with feedback', (close) => {
      const fb = h('textarea', { rows: 4, required: true });
      const status = h('div', {});
      return h('form', {
        onsubmit: async (e) => {
          e.preventDefault();
          try { await gql(Q.REGENERATE_FORM_VERSION, { id: v.id, feedback: fb.value.trim() }); close(); load(); } catch (err) { put(status, failure(err)); }
        },
      }, field('Feedback', fb, 'What the program should do differently.'), status,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Regenerate'), h('button', { type: 'button', onclick: () => close() }, 'Cancel')));
    });
  }

  function openBuilder(form, latest) {
    const done = () => { put(work); load(); };
    put(work, builder(form ? { name: form.name, description: form.description, fields: latest.fields } : {},
      async (x) => {
        if (form) await gql(Q.UPDATE_FORM, { id: form.id, ...x });
        else await gql(Q.CREATE_FORM, { projectId: project.id, ...x });
        done();
      }, () => put(work)));
    work.querySelector('input').focus();
  }

  function importer() {
    const text = h('textarea', { rows: 5, spellcheck: false, placeholder: '{"name": "…", "fields": [{"name": "sample_size", "type": "INTEGER"}]}' });
    const status = h('div', {});
    return h('form', {
      class: 'card',
      'aria-label': 'Import a form',
      onsubmit: async (e) => {
        e.preventDefault();
        put(status);
        let v;
        try { v = JSON.parse(text.value); } catch (err) { put(status, failure(new Error(`Not JSON: ${err.message}`))); return; }
        const obj = Array.isArray(v) ? { name: 'Imported form', fields: v } : v;
        if (!obj || !Array.isArray(obj.fields)) { put(status, failure(new Error('Expected {"name", "fields": [...]} or a list of fields.'))); return; }
        try {
          await gql(Q.CREATE_FORM, { projectId: project.id, name: String(obj.name || 'Imported form'), description: obj.description || null, fields: obj.fields.map(toInput) });
          text.value = '';
          put(status, h('p', { class: 'notice', role: 'status' }, 'Imported.'));
          load();
        } catch (err) { put(status, failure(err)); }
      },
    }, field('Form JSON', text, 'A form as `evistream extract --form` reads it: {"name", "description", "fields"} or a list of fields.'), status,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Import')));
  }

  put(top, edit ? h('div', { class: 'actions' },
    h('button', { class: 'primary', onclick: () => openBuilder(null, null) }, 'New form')) : null);
  if (edit) el.insertBefore(importer(), list);
  await load();
}
