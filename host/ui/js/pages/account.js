// The account: organizations and roles; each organization's members; for
// administrators, adding members, changing roles, removing members, and
// API keys (created with the secret shown once, listed, revoked).

import { h, put, field, confirmDialog } from '../dom.js';
import { gql } from '../api.js';
import * as Q from '../queries.js';
import { failure, word } from '../ui.js';

const ROLES = ['VIEWER', 'REVIEWER', 'ADMIN', 'OWNER'];

function roleSelect(current, label) {
  return h('select', { 'aria-label': label || null },
    ROLES.map((r) => h('option', { value: r, selected: r === (current || 'REVIEWER') }, word(r))));
}

export async function render(main, { ctx }) {
  const me = ctx.me;
  const orgs = me.memberships;
  const cards = h('div', {});
  put(main, h('h1', {}, 'Account'),
    h('p', {}, `${me.name ? `${me.name} · ` : ''}${me.email}`),
    h('table', { class: 'grid compact' }, h('caption', {}, 'Your organizations'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Organization'), h('th', { scope: 'col' }, 'Your role'))),
      h('tbody', {}, orgs.map((m) => h('tr', {}, h('th', { scope: 'row' }, m.organization.name), h('td', {}, word(m.role)))))),
    cards);
  for (const m of orgs) {
    const card = h('section', { class: 'card', 'aria-label': m.organization.name });
    cards.appendChild(card);
    orgCard(card, m.organization, ['OWNER', 'ADMIN'].includes(m.role), me);
  }
}

async function orgCard(card, org, admin, me) {
  const members = h('div', {});
  const keys = h('div', {});
  const status = h('div', {});

  async function loadMembers() {
    let list;
    try { list = (await gql(Q.ORGANIZATION_MEMBERS, { id: org.id })).organization.members; } catch (e) { put(members, failure(e)); return; }
    put(members, h('table', { class: 'grid compact' }, h('caption', {}, 'Members'),
      h('thead', {}, h('tr', {}, ['Member', 'Role', admin ? 'Actions' : null].filter(Boolean).map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, list.map((x) => {
        const label = x.user.email;
        const sel = roleSelect(x.role, `Role of ${label}`);
        sel.addEventListener('change', async () => {
          try {
            await gql(Q.ADD_MEMBER, { organizationId: org.id, email: x.user.email, role: sel.value });
            put(status, h('p', { class: 'notice', role: 'status' }, `${label} is now ${word(sel.value)}.`));
          } catch (e) { put(status, failure(e)); }
          loadMembers();
        });
        return h('tr', {},
          h('th', { scope: 'row' }, x.user.name ? `${x.user.name} · ${label}` : label),
          h('td', {}, admin && x.user.id !== me.id ? sel : word(x.role)),
          admin ? h('td', {}, x.user.id !== me.id ? h('button', {
            class: 'danger small', 'aria-label': `Remove ${label}`,
            onclick: async () => {
              if (!await confirmDialog('Remove member', `Remove ${label} from ${org.name}? Their API keys here are revoked too.`, 'Remove')) return;
              try { await gql(Q.REMOVE_MEMBER, { organizationId: org.id, userId: x.user.id }); } catch (e) { put(status, failure(e)); }
              loadMembers();
            },
          }, 'Remove') : '') : null);
      }))));
  }

  async function loadKeys() {
    let list;
    try { list = (await gql(Q.ORGANIZATION_API_KEYS, { id: org.id })).organization.apiKeys; } catch (e) { put(keys, failure(e)); return; }
    put(keys, list.length ? h('table', { class: 'grid compact' }, h('caption', {}, 'API keys'),
      h('thead', {}, h('tr', {}, ['Name', 'Role', 'Starts with', 'Last used', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, list.map((k) => h('tr', {},
        h('th', { scope: 'row' }, k.name), h('td', {}, word(k.role)), h('td', {}, h('code', {}, k.prefix)),
        h('td', {}, k.lastUsedAt ? new Date(k.lastUsedAt).toLocaleString() : 'never'),
        h('td', {}, k.revoked ? 'Revoked' : h('button', {
          class: 'danger small', 'aria-label': `Revoke ${k.name}`,
          onclick: async () => {
            if (!await confirmDialog('Revoke API key', `Revoke “${k.name}”? It stops working at once.`, 'Revoke')) return;
            try { await gql(Q.REVOKE_API_KEY, { id: k.id }); } catch (e) { put(status, failure(e)); }
            loadKeys();
          },
        }, 'Revoke')))))) : h('p', { class: 'muted' }, 'No API keys.'));
  }

  const email = h('input', { type: 'email', required: true });
  const role = roleSelect();
  const keyName = h('input', { type: 'text', required: true });
  const keyRole = roleSelect();
  const keyStatus = h('div', {});
  put(card, h('h2', {}, org.name), status, members,
    admin ? h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const d = await gql(Q.ADD_MEMBER, { organizationId: org.id, email: email.value.trim(), role: role.value });
          put(status, h('p', { class: 'notice', role: 'status' }, `${d.addMember.user.email} is now ${word(d.addMember.role)}.`));
          email.value = '';
          loadMembers();
        } catch (err) { put(status, failure(err)); }
      },
    }, h('h3', {}, 'Add a member'), h('p', { class: 'muted' }, 'They need an account first.'),
    h('div', { class: 'cols' }, field('Member email', email), field('Member role', role)),
    h('button', { type: 'submit' }, 'Add member')) : null,
    admin ? keys : null,
    admin ? h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const d = await gql(Q.CREATE_API_KEY, { organizationId: org.id, name: keyName.value.trim(), role: keyRole.value });
          const secret = h('input', { type: 'text', readonly: true, value: d.createApiKey.secret });
          put(keyStatus, h('div', { class: 'notice', role: 'status' }, field('API key secret (shown once: copy it now)', secret)));
          secret.select();
          keyName.value = '';
          loadKeys();
        } catch (err) { put(keyStatus, failure(err)); }
      },
    }, h('h3', {}, 'Create an API key'), h('div', { class: 'cols' }, field('Key name', keyName), field('Key role', keyRole)),
    keyStatus, h('button', { type: 'submit' }, 'Create API key')) : null);
  await loadMembers();
  if (admin) await loadKeys();
}
