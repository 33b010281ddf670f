// The projects of an organization: list, create, rename, delete.

import { h, put, field, inlineField, dialog, confirmDialog } from '../dom.js';
import { gql } from '../api.js';
import * as Q from '../queries.js';
import { allNodes, failure } from '../ui.js';

const ORG = 'evistream.organization';

export async function render(main, { ctx }) {
  const orgs = ctx.me.memberships.map((m) => m.organization);
  let orgId = sessionStorage.getItem(ORG);
  if (!orgs.some((o) => o.id === orgId)) orgId = orgs[0]?.id;
  const list = h('div', {});
  const head = h('div', { class: 'row-head' });
  put(main, h('h1', {}, 'Projects'), head, list);

  async function load() {
    put(list, h('p', { class: 'muted', role: 'status' }, 'Loading…'));
    let items;
    try {
      items = await allNodes(Q.PROJECTS, { organizationId: orgId, first: 100 }, (d) => d.projects);
    } catch (e) {
      put(list, failure(e));
      return;
    }
    const edit = ctx.canEdit(orgId);
    const admin = ctx.isAdmin(orgId);
    if (!items.length) {
      put(list, h('p', { class: 'muted' }, edit ? 'No projects yet. Create one to upload papers.' : 'No projects yet.'));
      return;
    }
    put(list, h('ul', { class: 'cards' }, items.map((p) => h('li', { class: 'card' },
      h('a', { class: 'title', href: `#/p/${encodeURIComponent(p.id)}/documents` }, p.name),
      p.description ? h('p', { class: 'muted' }, p.description) : null,
      edit ? h('div', { class: 'actions small' },
        h('button', { onclick: () => rename(p), 'aria-label': `Rename ${p.name}` }, 'Rename'),
        admin ? h('button', { class: 'danger', onclick: () => remove(p), 'aria-label': `Delete ${p.name}` }, 'Delete') : null)
        : null))));
  }

  async function rename(p) {
    await dialog('Rename project', (close) => {
      const name = h('input', { type: 'text', value: p.name, required: true });
      const status = h('div', {});
      return h('form', {
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            await gql(Q.UPDATE_PROJECT, { id: p.id, name: name.value.trim() });
            close(true);
            load();
          } catch (err) { put(status, failure(err)); }
        },
      }, field('Name', name), status, h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary' }, 'Save'),
        h('button', { type: 'button', onclick: () => close(false) }, 'Cancel')));
    });
  }

  async function remove(p) {
    if (!await confirmDialog('Delete project', `Delete “${p.name}” with its documents, forms and results? This cannot be undone.`, 'Delete')) return;
    try {
      await gql(Q.DELETE_PROJECT, { id: p.id });
    } catch (e) {
      put(list, failure(e));
      return;
    }
    load();
  }

  function create() {
    dialog('New project', (close) => {
      const name = h('input', { type: 'text', required: true });
      const description = h('textarea', { rows: 2 });
      const status = h('div', {});
      return h('form', {
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const d = await gql(Q.CREATE_PROJECT, {
              organizationId: orgId, name: name.value.trim(), description: description.value.trim() || null,
            });
            close(true);
            location.hash = `#/p/${encodeURIComponent(d.createProject.id)}/documents`;
          } catch (err) { put(status, failure(err)); }
        },
      }, field('Name', name), field('Description', description), status, h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary' }, 'Create'),
        h('button', { type: 'button', onclick: () => close(false) }, 'Cancel')));
    });
  }

  function drawHead() {
    const sel = orgs.length > 1 ? inlineField('Organization',
      h('select', {
        onchange: (e) => { orgId = e.target.value; sessionStorage.setItem(ORG, orgId); drawHead(); load(); },
      }, orgs.map((o) => h('option', { value: o.id, selected: o.id === orgId }, o.name)))) : null;
    put(head, sel, ctx.canEdit(orgId) ? h('button', { class: 'primary', onclick: create }, 'New project') : null);
  }
  if (!orgId) {
    put(list, h('p', {}, 'You belong to no organization.'));
    return;
  }
  drawHead();
  await load();
}
