// Review: each document's values beside its page, the selected value's
// evidence drawn on the page image; accept, correct or reject by mouse or
// keyboard; complete and reopen; other reviewers' changes arrive live.

import { h, put, field, dialog } from '../dom.js';
import { gql } from '../api.js';
import * as Q from '../queries.js';
import { subscribe } from '../live.js';
import { allNodes, badge, failure, show, versionPicker } from '../ui.js';

const PAGE_WIDTH = 1000;
/** How long a page's signed URL is reused (the server's live 10 minutes). */
const URL_REUSE_MS = 5 * 60_000;

/** path template ("arms[].n") → field type, from the form's fields. */
function typesOf(fields, prefix = '', out = new Map()) {
  for (const f of fields || []) {
    const p = prefix ? `${prefix}.${f.name}` : f.name;
    out.set(p, f);
    if (f.type === 'OBJECT') typesOf(f.fields, p, out);
    if (f.type === 'ARRAY') typesOf(f.fields, `${p}[]`, out);
  }
  return out;
}

/** Concrete paths of the form for a blind extraction: leaves, with list
 * items 0..n-1 where n is how many items `have` (or `extra`) holds. */
function blindPaths(fields, have, extra, prefix = '') {
  const out = [];
  for (const f of fields || []) {
    const p = prefix ? `${prefix}.${f.name}` : f.name;
    if (f.type === 'OBJECT') out.push(...blindPaths(f.fields, have, extra, p));
    else if (f.type === 'ARRAY') {
      const idx = new RegExp(`^${p.replace(/[.[\]]/g, '\\$&')}\\[(\\d+)\\]`);
      let n = Math.max(1, extra.get(p) || 0);
      for (const k of Object.keys(have)) {
        const m = k.match(idx);
        if (m) n = Math.max(n, Number(m[1]) + 1);
      }
      for (let i = 0; i < n; i++) {
        out.push(...blindPaths(f.fields, have, extra, `${p}[${i}]`).map((x) => ({ ...x, list: p, item: i })));
      }
      out.push({ addTo: p, count: n });
    } else out.push({ path: p, field: f });
  }
  return out;
}

/** A corrected value typed as its field asks (the server checks it again). */
export function parseValue(text, f) {
  const t = text.trim();
  if (t === '') return null;
  switch (f?.type) {
    case 'NUMBER': case 'INTEGER': {
      const n = Number(t.replace(/,/g, ''));
      return Number.isFinite(n) ? n : t;
    }
    case 'BOOLEAN':
      if (/^(true|yes|y|1)$/i.test(t)) return true;
      if (/^(false|no|n|0)$/i.test(t)) return false;
      return t;
    case 'ENUM':
      return f.multiple ? t.split(',').map((s) => s.trim()).filter(Boolean) : t;
    case 'TEXT': case 'DATE':
      return t;
    default:
      try { return JSON.parse(t); } catch { return t; }
  }
}

export async function render(el, { project, parts, params, edit }) {
  const head = h('div', { class: 'row-head' });
  const body = h('div', {});
  put(el, head, body);
  let version = null;
  let stop = null;
  const docId = parts[3] || null;
  const [picker, chosen] = await versionPicker(project.id, (v) => { version = v; draw(); });
  version = chosen;
  put(head, picker);

  async function draw() {
    if (stop) { stop(); stop = null; }
    if (!version) { put(body); return; }
    stop = docId ? await documentView(body, project, version, docId, edit, params.get('path')) : await documentList(body, project, version);
  }
  await draw();
  return () => { if (stop) stop(); };
}

async function documentList(el, project, version) {
  async function load() {
    let rows;
    try {
      rows = await allNodes(Q.RESULTS, { projectId: project.id, formVersionId: version.id }, (d) => d.results);
    } catch (e) { put(el, failure(e)); return; }
    if (!rows.length) { put(el, h('p', { class: 'muted' }, 'Nothing extracted with this form version yet: run an extraction first.')); return; }
    put(el, h('table', { class: 'grid' }, h('caption', {}, 'Documents to review'),
      h('thead', {}, h('tr', {}, ['Document', 'Review', 'Unreviewed values'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map((r) => h('tr', {},
        h('th', { scope: 'row' }, h('a', { href: `#/p/${encodeURIComponent(project.id)}/review/${encodeURIComponent(r.document.id)}` }, r.document.filename)),
        h('td', {}, badge(r.review.status)),
        h('td', {}, String(r.review.values.filter((v) => v.state === 'UNREVIEWED').length)))))));
  }
  await load();
  return subscribe(Q.REVIEW_UPDATED, { projectId: project.id }, { next: () => load(), restarted: () => load() });
}

async function documentView(el, project, version, docId, edit, initialPath) {
  const types = typesOf(version.version.fields);
  /** The form field of a concrete path (`arms[0].n` → `arms[].n`). */
  const fieldOf = (path) => types.get(path.replace(/\[\d+\]/g, '[]'));
  const dual = project.reviewSettings?.mode === 'DUAL';
  const extraItems = new Map();
  const pageBox = h('div', { class: 'page-view' });
  const valuesBox = h('div', { class: 'values' });
  const status = h('div', { class: 'status-slot' });
  const title = h('h2', {});
  const keys = h('p', { class: 'shortcuts', id: 'review-keys' },
    'Keys: ', h('kbd', {}, 'j'), '/', h('kbd', {}, '↓'), ' next · ', h('kbd', {}, 'k'), '/', h('kbd', {}, '↑'), ' previous · ',
    h('kbd', {}, 'n'), ' next unreviewed · ', h('kbd', {}, 'a'), ' accept · ', h('kbd', {}, 'c'), ' correct · ', h('kbd', {}, 'r'), ' reject');
  const reviewActions = h('div', { class: 'actions' });
  put(el, h('p', {}, h('a', { href: `#/p/${encodeURIComponent(project.id)}/review` }, '← All documents')),
    title, status, reviewActions,
    h('div', { class: 'review-split' }, pageBox, h('div', {}, edit && !dual ? keys : null, valuesBox)));

  let review = null;
  let selected = 0;
  let page = 1;
  let doc = null;
  let editing = null;

  const locked = () => review?.status === 'COMPLETE';

  // A page's signed URL, reused while it is young: a new one per selection
  // would be a new request and, its URL being new, a new image download.
  const pageUrls = new Map();
  async function pageUrl(p) {
    const known = pageUrls.get(p);
    if (known && Date.now() - known.at < URL_REUSE_MS) return known.url;
    const url = (await gql(Q.DOCUMENT_PAGE, { id: docId, page: p, width: PAGE_WIDTH })).document.pageImageUrl;
    pageUrls.set(p, { url, at: Date.now() });
    return url;
  }

  async function loadDoc() {
    try {
      const d = await gql(Q.DOCUMENT_PAGE, { id: docId, page: 1, width: PAGE_WIDTH });
      doc = d.document;
      pageUrls.set(1, { url: doc.pageImageUrl, at: Date.now() });
      put(title, doc.filename);
      document.title = `Review ${doc.filename} · eviStream`;
    } catch (e) { put(pageBox, failure(e)); }
  }

  /** Loads and draws the review; `live`: because someone changed it. */
  async function loadReview(live = false) {
    try {
      review = (await gql(Q.REVIEW, { documentId: docId, formVersionId: version.id })).review;
    } catch (e) { put(valuesBox, failure(e)); return; }
    if (initialPath) {
      selected = Math.max(0, review.values.findIndex((v) => v.path === initialPath));
      initialPath = null;
    }
    if (selected >= review.values.length) selected = 0;
    drawActions();
    // A correction being typed stays as it is when someone else's change
    // lands meanwhile; the values are redrawn once it is saved or cancelled.
    if (live && editing !== null) return;
    drawValues();
    await drawPage(true);
  }

  function boxesOf(v) {
    return (v?.evidence || []).flatMap((e) => e.boxes || []);
  }

  async function drawPage(follow) {
    if (!doc) return;
    const v = review?.values[selected];
    const boxes = boxesOf(v);
    if (follow) {
      const p = boxes[0]?.page || v?.evidence?.find((e) => e.page)?.page;
      if (p) page = p;
    }
    let url;
    try {
      url = await pageUrl(page);
    } catch (e) { put(pageBox, failure(e)); return; }
    const img = h('img', { src: url, alt: `Page ${page} of ${doc.filename}`, width: PAGE_WIDTH });
    const layer = h('div', { class: 'page-layer' }, img,
      boxes.filter((b) => b.page === page).map((b) => {
        const d = h('div', { class: 'evidence-box', 'data-evidence-box': '', title: v.evidence[0]?.quote || '' });
        d.style.left = `${b.x * 100}%`;
        d.style.top = `${b.y * 100}%`;
        d.style.width = `${b.width * 100}%`;
        d.style.height = `${b.height * 100}%`;
        return d;
      }));
    put(pageBox,
      h('div', { class: 'page-nav' },
        h('button', { disabled: page <= 1, onclick: () => { page--; drawPage(false); } }, 'Previous page'),
        h('span', {}, ` Page ${page} of ${doc.pageCount || '?'} `),
        h('button', { disabled: page >= (doc.pageCount || 1), onclick: () => { page++; drawPage(false); } }, 'Next page')),
      layer);
    layer.querySelector('[data-evidence-box]')?.scrollIntoView({ block: 'center' });
  }

  function drawActions() {
    if (!edit || review.blind) { put(reviewActions, badge(review.status)); return; }
    put(reviewActions, badge(review.status),
      locked()
        ? h('button', { onclick: reopen }, 'Reopen review')
        : h('button', { class: 'primary', onclick: complete }, 'Complete review'));
  }

  function valueRow(v, i) {
    const f = fieldOf(v.path);
    const ev = v.evidence[0];
    const row = h('li', {
      class: `value-row${i === selected ? ' selected' : ''}`, 'data-path': v.path, 'aria-current': i === selected ? 'true' : null,
      onclick: (e) => { if (e.target.closest('button, input, form')) return; select(i); },
    },
    h('div', { class: 'value-head' },
      h('code', { class: 'path' }, v.path), ' ', badge(v.state),
      ev ? h('span', { class: `grounding g-${ev.grounding.toLowerCase()}` }, ev.grounding.toLowerCase().replace('_', ' ')) : null,
      v.confidence !== null && v.confidence !== undefined
        ? h('span', { class: `confidence${v.confidence < 0.5 ? ' low' : ''}` }, ` confidence ${v.confidence.toFixed(2)}`) : null),
    h('div', { class: 'value' }, show(v.value), f?.unit ? h('span', { class: 'muted' }, ` ${f.unit}`) : null),
    v.source !== 'EXTRACTOR' ? h('div', { class: 'muted' }, `Extractor: ${show(v.extracted)}`) : null,
    ev?.quote ? h('blockquote', {}, ev.quote) : null,
    edit && !locked() ? h('div', { class: 'actions small' },
      h('button', { onclick: () => verdict(i, 'ACCEPT') }, 'Accept'),
      h('button', { onclick: () => startCorrect(i) }, 'Correct'),
      h('button', { class: 'danger', onclick: () => verdict(i, 'REJECT') }, 'Reject')) : null,
    editing === i ? correctForm(v, f) : null,
    v.decisions?.length ? h('details', {}, h('summary', {}, `${v.decisions.length} decision${v.decisions.length === 1 ? '' : 's'}`),
      h('ul', {}, v.decisions.map((d) => h('li', {}, `${d.reviewer?.email || 'someone'}: ${d.verdict.toLowerCase()}`,
        d.value !== null && d.value !== undefined ? ` → ${show(d.value)}` : '', d.note ? ` (${d.note})` : '', ` · ${new Date(d.at).toLocaleString()}`)))) : null);
    return row;
  }

  /** The form behind Correct and Resolve: "Value", typed by the field, plus `extra` controls. */
  function valueForm(v, hint, extra, send) {
    const input = h('input', { type: 'text', value: v.value === null ? '' : show(v.value) });
    const err = h('div', {});
    setTimeout(() => input.focus(), 0);
    return h('form', {
      class: 'correct',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          await send(input.value);
          editing = null;
          await loadReview();
          focusSelected();
        } catch (x) { put(err, failure(x)); }
      },
    }, field('Value', input, hint), extra, err,
    h('div', { class: 'actions small' }, h('button', { type: 'submit', class: 'primary' }, 'Save'),
      h('button', { type: 'button', onclick: () => { editing = null; drawValues(); } }, 'Cancel')));
  }

  function correctForm(v, f) {
    const quote = h('input', { type: 'text', value: '' });
    const hint = f ? `${f.type}${f.unit ? `, ${f.unit}` : ''}${f.options?.length ? `: ${f.options.join(' | ')}` : ''}` : null;
    return valueForm(v, hint, field('Quote (optional)', quote), (text) => gql(Q.VERIFY_VALUE, {
      documentId: docId, formVersionId: version.id, path: v.path, verdict: 'CORRECT',
      value: parseValue(text, f), quote: quote.value.trim() || null,
    }));
  }

  function drawBlind() {
    const own = Object.fromEntries(review.values.map((v) => [v.path, v.value]));
    const rows = blindPaths(version.version.fields, own, extraItems);
    const inputs = [];
    const err = h('div', {});
    const collect = () => {
      const values = {};
      for (const r of inputs) {
        if (r.nr.checked) values[r.path] = null;
        else if (r.input.value.trim() !== '') values[r.path] = parseValue(r.input.value, r.field);
      }
      return values;
    };
    const send = async (submit) => {
      put(err);
      try {
        await gql(Q.SUBMIT_REVIEWER_VALUES, { documentId: docId, formVersionId: version.id, values: collect(), submit });
        put(status, h('p', { class: 'notice', role: 'status' }, submit ? 'Your extraction is submitted.' : 'Draft saved.'));
        await loadReview();
      } catch (e) { put(err, failure(e)); }
    };
    put(valuesBox,
      h('p', {}, 'Independent extraction: you see neither the extractor\'s values nor other reviewers\' until you submit yours.'),
      h('form', { class: 'blind', onsubmit: (e) => { e.preventDefault(); send(true); } },
        rows.map((r) => {
          if (r.addTo) {
            return h('button', { type: 'button', class: 'small', onclick: () => { extraItems.set(r.addTo, r.count + 1); drawBlind(); } }, `Add an item to ${r.addTo}`);
          }
          const has = Object.prototype.hasOwnProperty.call(own, r.path);
          const input = h('input', { type: 'text', value: has && own[r.path] !== null ? show(own[r.path]) : '' });
          const nr = h('input', { type: 'checkbox', checked: has && own[r.path] === null, 'aria-label': `${r.path} not reported` });
          inputs.push({ path: r.path, field: r.field, input, nr });
          return h('div', { class: 'blind-row' }, field(r.path, input, r.field.description || r.field.type),
            h('label', { class: 'check' }, nr, ' Not reported'));
        }),
        err,
        edit ? h('div', { class: 'actions' },
          h('button', { type: 'button', onclick: () => send(false) }, 'Save draft'),
          h('button', { type: 'submit', class: 'primary' }, 'Submit my extraction')) : null));
  }

  function drawDual() {
    const people = review.extractions || [];
    const resolveFor = editing !== null ? review.values[editing]?.path : null;
    put(valuesBox, h('table', { class: 'grid compact dual' },
      h('caption', {}, `Extractor and ${people.length} independent extraction${people.length === 1 ? '' : 's'}`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Path'), h('th', { scope: 'col' }, 'Extractor'),
        people.map((p) => h('th', { scope: 'col', class: 'who' }, p.reviewer.email || 'API key')),
        h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Final'))),
      h('tbody', {}, review.values.map((v, i) => h('tr', {
        class: `value-row${i === selected ? ' selected' : ''}`, 'data-path': v.path,
        onclick: (e) => { if (e.target.closest('button, input, form')) return; select(i); },
      },
      h('th', { scope: 'row' }, h('code', { class: 'path' }, v.path)),
      h('td', {}, show(v.extracted)),
      people.map((p) => h('td', {}, Object.prototype.hasOwnProperty.call(p.values, v.path) ? show(p.values[v.path]) : '')),
      h('td', {}, badge(v.state)),
      h('td', {}, show(v.value),
        edit && !locked() && (v.state === 'DISPUTED' || v.state === 'RESOLVED') && resolveFor !== v.path
          ? h('div', {}, h('button', { class: 'small', onclick: () => { editing = i; drawValues(); } }, 'Resolve')) : null,
        resolveFor === v.path ? resolveForm(v) : null))))));
  }

  function resolveForm(v) {
    const f = fieldOf(v.path);
    const note = h('textarea', { rows: 2, required: true });
    return valueForm(v, 'Empty: not reported.', field('Why', note), (text) => gql(Q.RESOLVE_VALUE, {
      documentId: docId, formVersionId: version.id, path: v.path, value: parseValue(text, f), note: note.value.trim(),
    }));
  }

  function drawValues() {
    if (dual && review.blind) { drawBlind(); return; }
    if (dual) { drawDual(); return; }
    if (!review.values.length) { put(valuesBox, h('p', { class: 'muted' }, 'No values.')); return; }
    const left = review.values.filter((v) => v.state === 'UNREVIEWED').length;
    put(valuesBox, h('p', { class: 'muted' }, `${review.values.length} values, ${left} unreviewed `,
      left ? h('button', { class: 'small', onclick: nextUnreviewed }, 'Next unreviewed') : null),
      h('ol', { class: 'value-list', 'aria-label': 'Values' }, review.values.map(valueRow)));
  }

  function focusSelected() {
    valuesBox.querySelector('.value-row.selected')?.scrollIntoView({ block: 'nearest' });
  }

  function select(i) {
    if (!review || i < 0 || i >= review.values.length) return;
    selected = i;
    editing = null;
    drawValues();
    focusSelected();
    drawPage(true);
  }

  function nextUnreviewed() {
    const next = review.values.findIndex((x, j) => j > selected && x.state === 'UNREVIEWED');
    select(next >= 0 ? next : review.values.findIndex((x) => x.state === 'UNREVIEWED'));
  }

  function startCorrect(i) {
    selected = i;
    editing = i;
    drawValues();
    drawPage(true);
  }

  // A decision in flight: keys wait for it, so a quick `a` then `c` acts
  // on the value the first one moved to (shown on <… data-busy>).
  let busy = null;

  async function verdict(i, which) {
    const v = review.values[i];
    put(status);
    const run = (async () => {
      try {
        await gql(Q.VERIFY_VALUE, { documentId: docId, formVersionId: version.id, path: v.path, verdict: which });
      } catch (e) { put(status, failure(e)); return; }
      await loadReview();
      const next = review.values.findIndex((x, j) => j > i && x.state === 'UNREVIEWED');
      if (next >= 0) select(next);
    })();
    busy = run;
    valuesBox.dataset.busy = '1';
    try { await run; } finally {
      if (busy === run) { busy = null; delete valuesBox.dataset.busy; }
    }
  }

  async function complete() {
    put(status);
    try {
      await gql(Q.COMPLETE_REVIEW, { documentId: docId, formVersionId: version.id });
      put(status, h('p', { class: 'notice', role: 'status' }, 'Review complete.'));
    } catch (e) { put(status, failure(e)); return; }
    await loadReview();
  }

  async function reopen() {
    const note = await dialog('Reopen review', (close) => {
      const t = h('textarea', { rows: 3, required: true });
      return h('form', { onsubmit: (e) => { e.preventDefault(); close(t.value.trim()); } },
        field('Why', t), h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Reopen'),
          h('button', { type: 'button', onclick: () => close(null) }, 'Cancel')));
    });
    if (!note) return;
    try { await gql(Q.REOPEN_REVIEW, { documentId: docId, formVersionId: version.id, note }); } catch (e) { put(status, failure(e)); return; }
    await loadReview();
  }

  function onKey(e) {
    if (!review || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.target.closest?.('input, textarea, select, dialog')) return;
    if (busy) {
      // Replayed once the decision in flight has landed.
      const key = e.key;
      e.preventDefault();
      busy.then(() => onKey({ key, target: document.body, preventDefault() {} }));
      return;
    }
    const k = e.key;
    if (k === 'j' || k === 'ArrowDown') select(selected + 1);
    else if (k === 'k' || k === 'ArrowUp') select(selected - 1);
    else if (k === 'n') nextUnreviewed(); else if (dual) return;
    else if (edit && !locked() && k === 'a') verdict(selected, 'ACCEPT');
    else if (edit && !locked() && k === 'r') verdict(selected, 'REJECT');
    else if (edit && !locked() && k === 'c') startCorrect(selected);
    else return;
    e.preventDefault();
  }
  document.addEventListener('keydown', onKey);

  await loadDoc();
  await loadReview();
  const off = subscribe(Q.REVIEW_UPDATED, { projectId: project.id }, {
    next: (data) => {
      const r = data?.reviewUpdated;
      if (r && r.documentId === docId && r.formVersionId === version.id) loadReview(true);
    },
    restarted: () => loadReview(true),
  });
  return () => { off(); document.removeEventListener('keydown', onKey); };
}
