// Shared pieces of the pages: state words, errors, the project's
// navigation and the form-version picker.

import { h, inlineField } from './dom.js';
import { gql } from './api.js';
import * as Q from './queries.js';

/** 'AWAITING_REVIEW' → 'Awaiting review'. */
export function word(e) {
  if (!e) return '';
  const s = String(e).toLowerCase().replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** A state word as a badge (colour by state, text for everyone). */
export function badge(e) {
  return h('span', { class: `badge s-${String(e).toLowerCase()}` }, word(e));
}

/** An error as an alert. */
export function failure(e) {
  return h('p', { class: 'notice error', role: 'alert' }, e?.message || String(e));
}

/** A value as text (JSON for lists and objects, an em dash for null). */
export function show(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

export const SECTIONS = ['Documents', 'Forms', 'Extraction', 'Review', 'Results', 'Settings'];

/** The project header with its navigation; `current` is a section name. */
export function projectHeader(project, current) {
  return h('div', { class: 'project-head' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/projects' }, 'Projects'), ' / '),
    h('h1', {}, project.name),
    h('nav', { class: 'tabs', 'aria-label': 'Project' },
      SECTIONS.map((s) => h('a', {
        href: `#/p/${encodeURIComponent(project.id)}/${s.toLowerCase()}`,
        'aria-current': s === current ? 'page' : null,
      }, s))));
}

/** The project's form versions that can be used (ACTIVE first). */
export async function versionsOf(projectId) {
  const forms = (await gql(Q.FORMS, { id: projectId })).project.forms;
  const out = [];
  for (const f of forms) {
    for (const v of [...f.versions].reverse()) {
      if (v.status === 'ACTIVE' || v.status === 'SUPERSEDED') {
        out.push({ id: v.id, label: `${f.name} v${v.number} (${word(v.status)})`, active: v.status === 'ACTIVE', form: f, version: v });
      }
    }
  }
  out.sort((a, b) => Number(b.active) - Number(a.active));
  return out;
}

const PICK = 'evistream.version.';

/**
 * A select "Form version" over the project's usable versions; calls
 * `onPick(version)` now and on change. Returns [element, version|null].
 */
export async function versionPicker(projectId, onPick) {
  const versions = await versionsOf(projectId);
  if (!versions.length) {
    return [h('p', { class: 'notice' }, 'No approved form version yet: ',
      h('a', { href: `#/p/${encodeURIComponent(projectId)}/forms` }, 'approve one in Forms'), '.'), null];
  }
  const saved = sessionStorage.getItem(PICK + projectId);
  const chosen = versions.find((v) => v.id === saved) || versions[0];
  const sel = h('select', {
    onchange: () => {
      sessionStorage.setItem(PICK + projectId, sel.value);
      onPick(versions.find((v) => v.id === sel.value));
    },
  }, versions.map((v) => h('option', { value: v.id, selected: v.id === chosen.id }, v.label)));
  return [inlineField('Form version', sel), chosen];
}

/** Every node of a paginated connection; `pick(data)` gives the connection. */
export async function allNodes(query, variables, pick) {
  const out = [];
  let after = null;
  do {
    const c = pick(await gql(query, { ...variables, after }));
    out.push(...c.edges.map((e) => e.node));
    after = c.pageInfo.hasNextPage ? c.pageInfo.endCursor : null;
  } while (after);
  return out;
}
