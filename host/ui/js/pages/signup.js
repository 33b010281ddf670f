// Create an account (and its personal organization).

import { h, put, field } from '../dom.js';
import * as session from '../session.js';

export function render(main) {
  const email = h('input', { type: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const name = h('input', { type: 'text', autocomplete: 'name' });
  const status = h('div', { class: 'status-slot' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create account');
  put(main, h('form', {
    class: 'card narrow',
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      put(status);
      try {
        const who = email.value.trim();
        await session.register(who, password.value, name.value.trim());
        location.hash = `#/signin?created=${encodeURIComponent(who)}`;
      } catch (err) {
        put(status, h('p', { class: 'notice error', role: 'alert' }, err.message));
      } finally {
        submit.disabled = false;
      }
    },
  },
  h('h1', {}, 'Create an account'),
  field('Email', email),
  field('Password', password, 'At least 8 characters.'),
  field('Name', name),
  status,
  h('div', { class: 'actions' }, submit, h('a', { href: '#/signin' }, 'I have an account'))));
  email.focus();
}
