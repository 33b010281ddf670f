// The account: organizations and roles; for administrators, adding
// members and creating API keys (the secret is shown once).

import { h, put, field } from '../dom.js';
import { gql } from '../api.js';
import * as Q from '../queries.js';
import { failure, word } from '../ui.js';

const ROLES = ['VIEWER', 'REVIEWER', 'ADMIN', 'OWNER'];

export async function render(main, { ctx }) {
  const me = ctx.me;
  const orgs = me.memberships;
  put(main, h('h1', {}, 'Account'),
    h('p', {}, `${me.name ? `${me.name} · ` : ''}${me.email}`),
    h('table', { class: 'grid compact' }, h('caption', {}, 'Organizations'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Organization'), h('th', { scope: 'col' }, 'Role'))),
      h('tbody', {}, orgs.map((m) => h('tr', {}, h('th', { scope: 'row' }, m.organization.name), h('td', {}, word(m.role)))))),
    orgs.filter((m) => ['OWNER', 'ADMIN'].includes(m.role)).map((m) => adminCard(m.organization)));
}

function roleSelect() {
  return h('select', {}, ROLES.map((r) => h('option', { value: r, selected: r === 'REVIEWER' }, word(r))));
}

function adminCard(org) {
  const email = h('input', { type: 'email', required: true });
  const role = roleSelect();
  const memberStatus = h('div', {});
  const keyName = h('input', { type: 'text', required: true });
  const keyRole = roleSelect();
  const keyStatus = h('div', {});
  return h('section', { class: 'card', 'aria-label': org.name },
    h('h2', {}, org.name),
    h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const d = await gql(Q.ADD_MEMBER, { organizationId: org.id, email: email.value.trim(), role: role.value });
          put(memberStatus, h('p', { class: 'notice', role: 'status' }, `${d.addMember.user.email} is now ${word(d.addMember.role)}.`));
          email.value = '';
        } catch (err) { put(memberStatus, failure(err)); }
      },
    }, h('h3', {}, 'Add a member'), h('div', { class: 'cols' }, field('Member email', email), field('Member role', role)),
    memberStatus, h('button', { type: 'submit' }, 'Add member')),
    h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const d = await gql(Q.CREATE_API_KEY, { organizationId: org.id, name: keyName.value.trim(), role: keyRole.value });
          const secret = h('input', { type: 'text', readonly: true, value: d.createApiKey.secret });
          put(keyStatus, h('div', { class: 'notice', role: 'status' }, field('API key secret (shown once: copy it now)', secret)));
          secret.select();
          keyName.value = '';
        } catch (err) { put(keyStatus, failure(err)); }
      },
    }, h('h3', {}, 'Create an API key'), h('div', { class: 'cols' }, field('Key name', keyName), field('Key role', keyRole)),
    keyStatus, h('button', { type: 'submit' }, 'Create API key')));
}
