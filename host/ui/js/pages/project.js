// A project: its header and navigation, then one section.

import { h, put } from '../dom.js';
import { gql } from '../api.js';
import * as Q from '../queries.js';
import { projectHeader, failure, SECTIONS } from '../ui.js';

const MODULES = {
  documents: () => import('./documents.js'),
  forms: () => import('./forms.js'),
  extraction: () => import('./extraction.js'),
  review: () => import('./review.js'),
  results: () => import('./results.js'),
  settings: () => import('./settings.js'),
};

export async function render(main, { parts, params, ctx }) {
  const id = parts[1];
  const section = parts[2] || 'documents';
  let project;
  try {
    project = (await gql(Q.PROJECT, { id })).project;
  } catch (e) {
    put(main, h('h1', {}, 'Project'), failure(e.code === 'NOT_FOUND' ? new Error('This project does not exist or you cannot see it.') : e));
    return null;
  }
  const load = MODULES[section];
  const name = SECTIONS.find((s) => s.toLowerCase() === section);
  const body = h('section', { class: 'section', 'aria-label': name || 'Not found' });
  put(main, projectHeader(project, name), body);
  if (!load) {
    put(body, h('p', {}, 'No such page.'));
    return null;
  }
  document.title = `${name} · ${project.name} · eviStream`;
  const mod = await load();
  return mod.render(body, {
    project, parts, params, ctx,
    edit: ctx.canEdit(project.organizationId),
    admin: ctx.isAdmin(project.organizationId),
  });
}
