// Documents: upload PDFs (pick or drop several), watch each convert live,
// see why one failed, delete.

import { h, put, confirmDialog } from '../dom.js';
import { gql } from '../api.js';
import * as Q from '../queries.js';
import { subscribe } from '../live.js';
import { uploadPdf } from '../upload.js';
import { allNodes, badge, failure } from '../ui.js';

const LIVE = new Set(['PENDING', 'PROCESSING']);

export async function render(el, { project, edit, admin }) {
  const uploads = h('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const table = h('div', {});
  const live = new Map(); // document id → unsubscribe
  let docs = [];

  function draw() {
    if (!docs.length) {
      put(table, h('p', { class: 'muted' }, 'No documents yet.'));
      return;
    }
    put(table, h('table', { class: 'grid' },
      h('caption', {}, `${docs.length} document${docs.length === 1 ? '' : 's'}`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'File'), h('th', { scope: 'col' }, 'Status'),
        h('th', { scope: 'col' }, 'Pages'), h('th', { scope: 'col' }, 'Size'), admin ? h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')) : null)),
      h('tbody', {}, docs.map((d) => h('tr', { 'data-document': d.id },
        h('th', { scope: 'row' }, d.filename),
        h('td', {}, badge(d.status), d.status === 'PROCESSING' && d.job ? h('span', { class: 'muted' }, ` ${Math.round((d.job.progress || 0) * 100)}%`) : null,
          d.error ? h('div', { class: 'why' }, d.error) : null),
        h('td', {}, d.pageCount ?? '—'),
        h('td', {}, `${(d.sizeBytes / 1024 / 1024).toFixed(1)} MB`),
        admin ? h('td', {}, h('button', { class: 'danger small', 'aria-label': `Delete ${d.filename}`, onclick: () => remove(d) }, 'Delete')) : null)))));
  }

  function follow(d) {
    if (!d.job || !LIVE.has(d.status) || live.has(d.id)) return;
    live.set(d.id, subscribe(Q.JOB_UPDATED, { id: d.job.id }, {
      next: (data) => {
        const j = data?.jobUpdated;
        if (!j) return;
        d.job.progress = j.progress;
        if (j.state === 'RUNNING') d.status = 'PROCESSING';
        draw();
      },
      complete: () => { live.delete(d.id); load(); },
      restarted: () => load(),
    }));
  }

  async function load() {
    try {
      docs = await allNodes(Q.DOCUMENTS, { id: project.id }, (d) => d.project.documents);
    } catch (e) {
      put(table, failure(e));
      return;
    }
    draw();
    docs.forEach(follow);
  }

  async function remove(d) {
    if (!await confirmDialog('Delete document', `Delete “${d.filename}” and its results?`, 'Delete')) return;
    try { await gql(Q.DELETE_DOCUMENT, { id: d.id }); } catch (e) { put(table, failure(e)); return; }
    live.get(d.id)?.();
    live.delete(d.id);
    load();
  }

  async function send(files) {
    for (const file of files) {
      const bar = h('progress', { max: 1, value: 0, 'aria-label': `Uploading ${file.name}` });
      const state = h('span', { class: 'muted' }, 'uploading');
      uploads.appendChild(h('li', {}, h('span', {}, file.name), bar, state));
      try {
        const doc = await uploadPdf(project.id, file, (f) => { bar.value = f; });
        bar.value = 1;
        put(state, 'uploaded');
        if (!docs.some((x) => x.id === doc.id)) {
          docs.push({ ...doc, sizeBytes: file.size, pageCount: null, error: null, job: doc.job ? { ...doc.job, progress: 0 } : null });
        }
        draw();
        follow(docs.find((x) => x.id === doc.id));
      } catch (e) {
        put(state, h('span', { class: 'why', role: 'alert' }, `${file.name}: ${e.message}`));
      }
    }
  }

  const input = h('input', {
    type: 'file', accept: 'application/pdf,.pdf', multiple: true, id: 'upload-pdfs',
    onchange: () => { send([...input.files]); input.value = ''; },
  });
  const drop = h('div', {
    class: 'drop',
    ondragover: (e) => { e.preventDefault(); drop.classList.add('over'); },
    ondragleave: () => drop.classList.remove('over'),
    ondrop: (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      send([...e.dataTransfer.files]);
    },
  }, h('label', { for: 'upload-pdfs' }, 'Upload PDFs'), input, h('span', { class: 'muted' }, ' or drop PDF files here'));

  put(el, edit ? drop : null, uploads, table);
  await load();
  return () => { for (const off of live.values()) off(); };
}
