// Uploads a file by the GraphQL multipart request spec, with progress
// (fetch cannot report upload progress; XMLHttpRequest can).

import * as session from './session.js';
import { GqlError } from './http.js';
import * as Q from './queries.js';

/** Uploads `file` into the project; `onProgress(0..1)`. Resolves the document. */
export async function uploadPdf(projectId, file, onProgress) {
  const token = await session.token();
  const body = new FormData();
  body.append('operations', JSON.stringify({ query: Q.UPLOAD_DOCUMENT, variables: { projectId, file: null } }));
  body.append('map', JSON.stringify({ 0: ['variables.file'] }));
  body.append('0', file, file.name);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/graphql');
    xhr.setRequestHeader('authorization', `Bearer ${token}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new GqlError([{ message: 'the upload was interrupted', extensions: { code: 'NETWORK' } }]));
    xhr.onload = () => {
      let d;
      try { d = JSON.parse(xhr.responseText); } catch {
        reject(new GqlError([{
          message: xhr.status === 413 ? 'the file is larger than this server accepts' : `the server answered ${xhr.status}`,
          extensions: { code: xhr.status === 413 ? 'PAYLOAD_TOO_LARGE' : 'INTERNAL' },
        }]));
        return;
      }
      if (d.errors && d.errors.length) reject(new GqlError(d.errors));
      else resolve(d.data.uploadDocument);
    };
    xhr.send(body);
  });
}
