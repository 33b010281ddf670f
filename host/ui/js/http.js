// GraphQL over HTTP: one POST per operation to /graphql on this origin.

/** A GraphQL error answer; `code` is extensions.code (NOT_FOUND, …). */
export class GqlError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join('; ') || 'request failed');
    this.errors = errors;
    this.code = errors[0]?.extensions?.code || 'INTERNAL';
  }
}

/** Posts `query` with `variables`; `token`, when given, as a Bearer token. */
export async function post(query, variables, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch('/graphql', {
      method: 'POST', headers, body: JSON.stringify({ query, variables: variables || {} }),
    });
  } catch {
    throw new GqlError([{ message: 'the server cannot be reached', extensions: { code: 'NETWORK' } }]);
  }
  let body;
  try {
    body = await res.json();
  } catch {
    throw new GqlError([{ message: `the server answered ${res.status}`, extensions: { code: 'INTERNAL' } }]);
  }
  if (body.errors && body.errors.length) throw new GqlError(body.errors);
  return body.data;
}
