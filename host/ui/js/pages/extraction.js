// Extraction: run an approved form version over all or chosen documents,
// follow the run live (progress, each document's state), cancel, retry
// failed documents, and see the tokens and cost it used.

import { h, put } from '../dom.js';
import { gql } from '../api.js';
import * as Q from '../queries.js';
import { subscribe } from '../live.js';
import { allNodes, badge, failure, versionPicker } from '../ui.js';

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

function progressBar(fraction, label) {
  const pct = Math.round(Math.max(0, Math.min(1, fraction || 0)) * 100);
  const fill = h('div', { class: 'fill' });
  fill.style.width = `${pct}%`;
  return h('div', {
    class: 'progress', role: 'progressbar', 'aria-label': label,
    'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct, 'aria-valuetext': `${pct}%`,
  }, fill);
}

export async function render(el, { project, edit }) {
  const head = h('div', { class: 'row-head' });
  const chooser = h('div', {});
  const runBox = h('div', {});
  put(el, head, chooser, runBox);
  let version = null;
  let docs = [];
  let off = null;
  let refreshTimer = null;

  const [picker, chosen] = await versionPicker(project.id, (v) => { version = v; drawChooser(); load(); });
  version = chosen;

  try {
    docs = await allNodes(Q.DOCUMENTS, { id: project.id }, (d) => d.project.documents);
  } catch (e) { put(chooser, failure(e)); }
  const names = new Map(docs.map((d) => [d.id, d.filename]));
  const picked = new Set();

  function drawChooser() {
    if (!version || !edit) { put(chooser); return; }
    const ready = docs.filter((d) => d.status === 'COMPLETED');
    const status = h('div', {});
    put(chooser, h('form', {
      class: 'card',
      onsubmit: async (e) => {
        e.preventDefault();
        put(status);
        try {
          const ids = picked.size ? [...picked] : null;
          await gql(Q.START_EXTRACTION, { projectId: project.id, formVersionId: version.id, documentIds: ids });
          await load();
        } catch (err) { put(status, failure(err)); }
      },
    },
    h('p', {}, ready.length ? `${ready.length} converted document${ready.length === 1 ? '' : 's'}. Leave all unticked to extract every one.` : 'No converted documents yet.'),
    ready.length ? h('fieldset', { class: 'docs' }, h('legend', {}, 'Documents'), ready.map((d) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', checked: picked.has(d.id), onchange: (e) => { if (e.target.checked) picked.add(d.id); else picked.delete(d.id); } }),
      ` ${d.filename}`))) : null,
    status,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', disabled: !ready.length }, 'Run extraction'))));
  }

  function drawRun(run) {
    if (!run) { put(runBox, h('p', { class: 'muted' }, 'No extraction run of this form version yet.')); return; }
    const j = run.job;
    const units = j.children || [];
    const failed = units.filter((u) => u.state === 'FAILED' || u.state === 'CANCELLED');
    const done = units.filter((u) => TERMINAL.has(u.state)).length;
    const u = j.llmUsage;
    put(runBox, h('section', { class: 'card', 'aria-label': 'Latest run' },
      h('h2', {}, 'Latest run ', h('span', { class: 'run-state' }, badge(j.state))),
      progressBar(j.progress, 'Extraction progress'),
      h('p', { class: 'muted' }, `${done} of ${run.documentCount} documents done · started ${new Date(run.createdAt).toLocaleString()}`),
      j.error ? h('p', { class: 'why' }, j.error) : null,
      u ? h('p', {}, `LLM: ${u.calls} calls, ${u.inputTokens.toLocaleString()} tokens in, ${u.outputTokens.toLocaleString()} out, $${u.costUsd.toFixed(4)}`) : null,
      h('div', { class: 'actions' },
        edit && !TERMINAL.has(j.state) ? h('button', { class: 'danger', disabled: j.cancelRequested, onclick: () => cancel(j) }, 'Cancel') : null,
        edit && failed.length && TERMINAL.has(j.state)
          ? h('button', { onclick: () => retry(j) }, `Retry ${failed.length} failed or cancelled`) : null),
      h('table', { class: 'grid compact' }, h('caption', {}, 'Documents of this run'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Document'), h('th', { scope: 'col' }, 'State'))),
        h('tbody', {}, units.map((x) => h('tr', {},
          h('th', { scope: 'row' }, names.get(x.documentId) || x.documentId || x.id),
          h('td', {}, badge(x.state), x.error ? h('div', { class: 'why' }, x.error) : null)))))));
  }

  async function cancel(j) {
    try { await gql(Q.CANCEL_JOB, { id: j.id }); } catch (e) { put(runBox, failure(e)); }
    load();
  }

  // The run re-queues its failed and cancelled documents and runs again.
  async function retry(j) {
    try { await gql(Q.RETRY_JOB, { id: j.id }); } catch (e) { put(runBox, failure(e)); return; }
    load();
  }

  async function load() {
    if (off) { off(); off = null; }
    if (!version) { drawRun(null); return; }
    let runs;
    try { runs = (await gql(Q.EXTRACTION_RUNS, { id: project.id })).project.extractionRuns; } catch (e) { put(runBox, failure(e)); return; }
    const run = runs.find((r) => r.formVersionId === version.id) || null;
    drawRun(run);
    if (run && !TERMINAL.has(run.job.state)) {
      off = subscribe(Q.JOB_UPDATED, { id: run.job.id }, {
        next: (data) => {
          const j = data?.jobUpdated;
          if (!j) return;
          run.job.state = j.state;
          run.job.progress = j.progress;
          run.job.error = j.error;
          drawRun(run);
          // Units' states: fetched at most twice a second, and at once
          // when the run ends.
          const fetchUnits = async () => {
            refreshTimer = null;
            try { Object.assign(run.job, (await gql(Q.EXTRACTION_JOB, { id: run.job.id })).job); drawRun(run); } catch { /* next event retries */ }
          };
          if (TERMINAL.has(j.state)) {
            clearTimeout(refreshTimer);
            fetchUnits();
          } else if (!refreshTimer) {
            refreshTimer = setTimeout(fetchUnits, 500);
          }
        },
        complete: () => { off = null; },
        restarted: () => load(),
      });
    }
  }

  put(head, picker);
  drawChooser();
  await load();
  return () => { if (off) off(); clearTimeout(refreshTimer); };
}

