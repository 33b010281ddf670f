// The dashboard's entry: restores the session, draws the top bar and
// routes `#/…` to a page module (loaded on first visit, so the sign-in
// page stays small).

import { h, put } from './dom.js';
import * as session from './session.js';
import { gql } from './api.js';
import * as Q from './queries.js';
import { closeAll } from './live.js';

const PAGES = {
  signin: () => import('./pages/signin.js'),
  signup: () => import('./pages/signup.js'),
  projects: () => import('./pages/projects.js'),
  project: () => import('./pages/project.js'),
  account: () => import('./pages/account.js'),
};

/** Who is signed in, and their role per organization. */
export const ctx = {
  me: null,
  role(orgId) {
    return this.me?.memberships.find((m) => m.organization.id === orgId)?.role || 'VIEWER';
  },
  canEdit(orgId) { return this.role(orgId) !== 'VIEWER'; },
  isAdmin(orgId) { return ['OWNER', 'ADMIN'].includes(this.role(orgId)); },
  async reloadMe() { this.me = (await gql(Q.ME)).me; },
};

let cleanup = null;

function topBar() {
  const top = document.getElementById('top');
  if (!ctx.me) {
    put(top, h('a', { class: 'brand', href: '#/' }, 'eviStream'));
    return;
  }
  put(top,
    h('a', { class: 'brand', href: '#/projects' }, 'eviStream'),
    h('nav', { 'aria-label': 'Account' },
      h('a', { href: '#/account' }, ctx.me.email),
      h('button', {
        class: 'link',
        onclick: async () => { closeAll(); await session.signOut(); },
      }, 'Sign out')));
}

async function route() {
  if (cleanup) { try { cleanup(); } catch { /* page already gone */ } }
  cleanup = null;
  const main = document.getElementById('main');
  const [path, query] = (location.hash.slice(1) || '/').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || '');
  let name = parts[0] || 'projects';
  if (!session.signedIn()) {
    ctx.me = null;
    if (name !== 'signup') name = 'signin';
  } else if (name === 'signin' || name === 'signup') {
    location.hash = '#/projects';
    return;
  } else if (!ctx.me) {
    try {
      await ctx.reloadMe();
    } catch (e) {
      put(main, h('p', { role: 'alert', class: 'notice error' }, e.message));
      return;
    }
  }
  if (name === 'p') name = 'project';
  const load = PAGES[name];
  topBar();
  if (!load) {
    put(main, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/projects' }, 'Your projects')));
    return;
  }
  const mod = await load();
  cleanup = (await mod.render(main, { parts, params, ctx })) || null;
}

session.onSignOut(() => {
  ctx.me = null;
  closeAll();
  if (location.hash !== '#/signin') location.hash = '#/signin';
  else route();
});

window.addEventListener('hashchange', () => { route(); });

(async () => {
  await session.restore();
  route();
})();
