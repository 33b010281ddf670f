// Results: documents × fields with the final value of each (the review's
// where a person decided), coloured by state and grounding, filterable;
// each cell opens its evidence in Review. Evaluation against imported
// ground truth per field (table and bar chart), and exports.

import { h, put, svg, inlineField } from '../dom.js';
import { gql } from '../api.js';
import * as Q from '../queries.js';
import { allNodes, failure, show, versionPicker, word } from '../ui.js';

const LOW = 0.5;

const FILTERS = [
  ['all', 'All values'],
  ['ungrounded', 'Ungrounded'],
  ['low', `Low confidence (< ${LOW})`],
  ['disputed', 'Disputed'],
];

function cellOf(row, path) {
  const x = row.values.find((v) => v.path === path);
  const r = row.review?.values.find((v) => v.path === path);
  if (!x && !r) return null;
  return {
    value: r ? r.value : x.value,
    state: r?.state || 'UNREVIEWED',
    source: r?.source || 'EXTRACTOR',
    grounding: x?.grounding || null,
    ungrounded: !!x?.ungrounded,
    confidence: x?.confidence ?? null,
    status: x?.status,
  };
}

function keep(c, filter) {
  if (!c) return false;
  if (filter === 'ungrounded') return c.ungrounded;
  if (filter === 'low') return c.confidence !== null && c.confidence < LOW;
  if (filter === 'disputed') return c.state === 'DISPUTED';
  return true;
}

function chart(fields) {
  const w = 560;
  const bar = 18;
  const left = 200;
  const height = fields.length * (bar + 6) + 24;
  return svg('svg', { viewBox: `0 0 ${w} ${height}`, width: w, height, role: 'img', 'aria-label': 'Accuracy per field' },
    ...fields.map((f, i) => {
      const y = i * (bar + 6);
      const g = svg('g', {},
        svg('text', { x: left - 8, y: y + bar - 5, 'text-anchor': 'end', class: 'chart-label' }, f.path),
        svg('rect', { x: left, y, width: (w - left - 50) * f.accuracy, height: bar, class: 'chart-bar' }),
        svg('text', { x: left + (w - left - 50) * f.accuracy + 4, y: y + bar - 5, class: 'chart-value' }, f.accuracy.toFixed(2)));
      return g;
    }),
    svg('line', { x1: left, y1: 0, x2: left, y2: height - 20, class: 'chart-axis' }));
}

export async function render(el, { project }) {
  const head = h('div', { class: 'row-head' });
  const tools = h('div', { class: 'actions' });
  const table = h('div', { class: 'scroll' });
  const evaluation = h('section', { 'aria-label': 'Evaluation' });
  put(el, head, tools, table, evaluation);
  let version = null;
  let rows = [];
  let filter = 'all';

  const [picker, chosen] = await versionPicker(project.id, (v) => { version = v; load(); });
  version = chosen;

  function drawTable() {
    const paths = [];
    for (const r of rows) for (const v of r.values) if (!paths.includes(v.path)) paths.push(v.path);
    for (const r of rows) for (const v of r.review?.values || []) if (!paths.includes(v.path)) paths.push(v.path);
    const shown = filter === 'all' ? rows : rows.filter((r) => paths.some((p) => keep(cellOf(r, p), filter)));
    if (!rows.length) { put(table, h('p', { class: 'muted' }, 'No results for this form version yet.')); return; }
    put(table, h('table', { class: 'grid results' },
      h('caption', {}, `${shown.length} of ${rows.length} documents`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Document'), paths.map((p) => h('th', { scope: 'col' }, p)))),
      h('tbody', {}, shown.map((r) => h('tr', {},
        h('th', { scope: 'row' }, r.document.filename),
        paths.map((p) => {
          const c = cellOf(r, p);
          if (!c) return h('td', { class: 'empty' }, '');
          const dim = filter !== 'all' && !keep(c, filter);
          const href = `#/p/${encodeURIComponent(project.id)}/review/${encodeURIComponent(r.document.id)}?path=${encodeURIComponent(p)}`;
          return h('td', {
            class: `cell st-${c.state.toLowerCase()} gr-${(c.grounding || 'none').toLowerCase()}${c.ungrounded ? ' ungrounded' : ''}${dim ? ' dim' : ''}`,
            title: `${word(c.state)}${c.grounding ? `, ${word(c.grounding)}` : ''}${c.confidence !== null ? `, confidence ${c.confidence.toFixed(2)}` : ''}`,
          }, h('a', { href }, show(c.value)));
        }))))));
  }

  async function drawEvaluation() {
    put(evaluation);
    let ev;
    try { ev = (await gql(Q.EVALUATION, { projectId: project.id, formVersionId: version.id })).evaluation; } catch { return; }
    if (!ev.overall.support) return;
    put(evaluation, h('h2', {}, 'Evaluation against ground truth'),
      h('p', {}, `Overall accuracy ${ev.overall.accuracy.toFixed(3)} (${ev.overall.correct.toFixed(1)} of ${ev.overall.support})`),
      chart(ev.fields.filter((f) => f.support)),
      h('table', { class: 'grid compact' }, h('caption', {}, 'Per field'),
        h('thead', {}, h('tr', {}, ['Field', 'Comparator', 'Support', 'Correct', 'Accuracy'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ev.fields.map((f) => h('tr', {}, h('th', { scope: 'row' }, f.path), h('td', {}, f.comparator),
          h('td', {}, String(f.support)), h('td', {}, f.correct.toFixed(1)), h('td', {}, f.accuracy.toFixed(3)))))));
  }

  const links = h('div', { class: 'exports' });
  function drawTools() {
    const menu = h('div', { class: 'menu', hidden: true },
      [['CSV_WIDE', 'CSV (wide)'], ['CSV_LONG', 'CSV (long)'], ['JSON', 'JSON']].map(([format, label]) => h('button', {
        onclick: async () => {
          put(links, h('span', { class: 'muted', role: 'status' }, 'Exporting…'));
          try {
            const d = await gql(Q.EXPORT_RESULTS, { projectId: project.id, formVersionId: version.id, format, values: 'FINAL' });
            const a = h('a', { href: d.exportResults.downloadUrl, download: '' }, `Download ${label}`);
            put(links, a, ' · ', h('a', { href: d.exportResults.codebookDownloadUrl, download: '' }, 'Codebook'),
              h('span', { class: 'muted' }, ' (links work for 5 minutes)'));
            a.click();
          } catch (e) { put(links, failure(e)); }
        },
      }, label)));
    const button = h('button', {
      'aria-expanded': 'false',
      onclick: () => { menu.hidden = !menu.hidden; button.setAttribute('aria-expanded', String(!menu.hidden)); },
    }, 'Export');
    put(tools,
      inlineField('Show', h('select', { onchange: (e) => { filter = e.target.value; drawTable(); } },
        FILTERS.map(([k, l]) => h('option', { value: k, selected: k === filter }, l)))),
      h('span', { class: 'legend' }, ['verified', 'corrected', 'rejected', 'unreviewed', 'disputed'].map((s) => h('span', { class: `cell st-${s}` }, word(s)))),
      h('div', { class: 'export' }, button, menu), links);
  }

  async function load() {
    if (!version) { put(table); return; }
    try {
      rows = await allNodes(Q.RESULTS, { projectId: project.id, formVersionId: version.id }, (d) => d.results);
    } catch (e) { put(table, failure(e)); return; }
    drawTools();
    drawTable();
    drawEvaluation();
  }

  put(head, picker);
  await load();
}
