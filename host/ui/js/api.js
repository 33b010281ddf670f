// Authenticated GraphQL: the session's token on every request; an
// UNAUTHENTICATED answer (an access token that just expired) is retried
// once after a refresh.

import { post } from './http.js';
import * as session from './session.js';

export { GqlError } from './http.js';

/** Runs an operation as the signed-in user. */
export async function gql(query, variables) {
  try {
    return await post(query, variables, await session.token());
  } catch (e) {
    if (e.code !== 'UNAUTHENTICATED') throw e;
    await session.refresh();
    return post(query, variables, await session.token());
  }
}
