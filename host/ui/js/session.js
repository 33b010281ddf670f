// The signed-in session. The access token lives in memory only and is
// renewed through `refresh` shortly before it expires. The refresh token
// is kept in localStorage so a reload (or a new tab) signs in again; the
// README explains why. Refreshing runs under a Web Lock so two tabs never
// spend the same refresh token (reuse revokes the whole family).

import { post, GqlError } from './http.js';
import * as Q from './queries.js';

const KEY = 'evistream.refreshToken';
const LOCK = 'evistream-refresh';
let access = null;
let expiresAt = 0;
let timer = null;
const listeners = new Set();

function expiry(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part)).exp * 1000;
  } catch {
    return Date.now() + 60_000;
  }
}

function accept(pair) {
  access = pair.accessToken;
  expiresAt = expiry(access);
  localStorage.setItem(KEY, pair.refreshToken);
  clearTimeout(timer);
  // Renew a minute before expiry (or halfway, for short lives).
  const lead = Math.min(60_000, (expiresAt - Date.now()) / 2);
  timer = setTimeout(() => refresh().catch(() => signedOut()), Math.max(1000, expiresAt - Date.now() - lead));
}

function signedOut() {
  access = null;
  expiresAt = 0;
  clearTimeout(timer);
  localStorage.removeItem(KEY);
  for (const f of listeners) f();
}

/** Called when the session ends (sign-out, or a refresh token refused). */
export function onSignOut(f) { listeners.add(f); }

/** Whether there is an access token. */
export function signedIn() { return access !== null; }

/** Signs in with a password. */
export async function signIn(email, password) {
  const d = await post(Q.LOGIN, { email, password });
  accept(d.login);
}

/**
 * Creates an account (and its personal organization). The journey signs
 * in next, as a person would on the sign-in page, so the tokens register
 * returns are given back at once (their family revoked), never stored.
 */
export async function register(email, password, name) {
  const d = await post(Q.REGISTER, { email, password, name: name || null });
  await post(Q.LOGOUT, { refreshToken: d.register.refreshToken }).catch(() => {});
}

/** Swaps the stored refresh token for a new pair. */
export async function refresh() {
  const run = async () => {
    const token = localStorage.getItem(KEY);
    if (!token) throw new GqlError([{ message: 'not signed in', extensions: { code: 'UNAUTHENTICATED' } }]);
    try {
      const d = await post(Q.REFRESH, { refreshToken: token });
      accept(d.refresh);
    } catch (e) {
      if (e.code === 'UNAUTHENTICATED' || e.code === 'BAD_USER_INPUT') signedOut();
      throw e;
    }
  };
  if (navigator.locks) return navigator.locks.request(LOCK, run);
  return run();
}

/** Restores a session from the stored refresh token; false when there is none. */
export async function restore() {
  if (!localStorage.getItem(KEY)) return false;
  try {
    await refresh();
    return true;
  } catch {
    return false;
  }
}

/** A valid access token, renewed first when it is about to expire. */
export async function token() {
  if (access && Date.now() < expiresAt - 30_000) return access;
  await refresh();
  return access;
}

/** Signs out here and revokes the refresh token's family on the server. */
export async function signOut() {
  const t = localStorage.getItem(KEY);
  signedOut();
  if (t) await post(Q.LOGOUT, { refreshToken: t }).catch(() => {});
}
