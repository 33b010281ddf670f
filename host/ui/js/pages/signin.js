// Sign in with email and password.

import { h, put, field } from '../dom.js';
import * as session from '../session.js';

export function render(main, { params }) {
  const created = params?.get('created') || '';
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, value: created });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const status = h('div', { class: 'status-slot' },
    created ? h('p', { class: 'notice', role: 'status' }, 'Account created. Sign in to start.') : null);
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', {
    class: 'card narrow',
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      put(status);
      try {
        await session.signIn(email.value.trim(), password.value);
        location.hash = '#/projects';
      } catch (err) {
        put(status, h('p', { class: 'notice error', role: 'alert' },
          err.code === 'UNAUTHENTICATED' ? 'Wrong email or password.' : err.message));
        password.select();
      } finally {
        submit.disabled = false;
      }
    },
  },
  h('h1', {}, 'Sign in to eviStream'),
  field('Email', email),
  field('Password', password),
  status,
  h('div', { class: 'actions' }, submit, h('a', { href: '#/signup', class: 'button' }, 'Create account')));
  put(main, form);
  (created ? password : email).focus();
}
