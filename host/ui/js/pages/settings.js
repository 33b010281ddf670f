// Settings: the project's converter, extractor and LLM adapter; the
// adapter's base URL, model and API key (write-only); a test call; the
// project's LLM usage and cost.

import { h, put, field } from '../dom.js';
import { gql } from '../api.js';
import * as Q from '../queries.js';
import { failure } from '../ui.js';

export async function render(el, { project, admin }) {
  let data;
  let plugins;
  try {
    [data, plugins] = await Promise.all([
      gql(Q.PROJECT_SETTINGS, { id: project.id }).then((d) => d.project),
      gql(Q.PLUGINS).then((d) => d.plugins),
    ]);
  } catch (e) { put(el, failure(e)); return; }
  const b = data.plugins;
  const cfg = b.llmConfig || {};
  const of = (kind) => plugins.filter((p) => p.kind === kind);
  const select = (list, current, none) => h('select', { disabled: !admin },
    none ? h('option', { value: '', selected: !current }, none) : null,
    list.map((p) => h('option', { value: p.id, selected: current?.id === p.id }, `${p.id} ${p.version}${p.builtIn ? '' : ' (installed)'}`)));
  const converter = select(of('PDF_CONVERTER'), b.converter, null);
  const extractor = select(of('FORM_EXTRACTOR'), b.extractor, 'Automatic (llm-extractor with an adapter, else lexical-extractor)');
  const adapter = select(of('LLM_ADAPTER'), b.llmAdapter, 'None (offline extraction)');
  const baseUrl = h('input', { type: 'url', value: cfg.baseUrl || '', placeholder: 'https://api.openai.com/v1', disabled: !admin });
  const model = h('input', { type: 'text', value: cfg.model || '', placeholder: 'gpt-4o-mini', disabled: !admin });
  const hasKey = b.llmSecretNames.includes('apiKey');
  const apiKey = h('input', { type: 'password', autocomplete: 'off', placeholder: hasKey ? 'Set (leave empty to keep)' : 'Not set', disabled: !admin });
  const status = h('div', {});
  const u = data.llmUsage;

  async function save(e) {
    e.preventDefault();
    put(status);
    const llmConfig = { ...cfg };
    if (baseUrl.value.trim()) llmConfig.baseUrl = baseUrl.value.trim(); else delete llmConfig.baseUrl;
    if (model.value.trim()) llmConfig.model = model.value.trim(); else delete llmConfig.model;
    try {
      await gql(Q.CONFIGURE_PROJECT_PLUGINS, {
        projectId: project.id,
        converter: converter.value,
        extractor: extractor.value,
        llmAdapter: adapter.value,
        llmConfig: adapter.value ? llmConfig : null,
        llmSecrets: adapter.value && apiKey.value ? { apiKey: apiKey.value } : null,
      });
      apiKey.value = '';
      put(status, h('p', { class: 'notice', role: 'status' }, 'Saved.'));
    } catch (err) { put(status, failure(err)); }
  }

  async function test() {
    put(status, h('p', { class: 'muted', role: 'status' }, 'Calling the model…'));
    try {
      const r = (await gql(Q.CHECK_LLM_CONNECTION, { projectId: project.id })).checkLlmConnection;
      put(status, h('p', { class: 'notice', role: 'status' }, `Connected to ${r.model}: “${r.text}”`));
    } catch (err) { put(status, failure(err)); }
  }

  put(el,
    h('form', { class: 'card', onsubmit: save, 'aria-label': 'Plugins' },
      h('h2', {}, 'Plugins'),
      field('Converter', converter),
      field('Extractor', extractor),
      field('LLM adapter', adapter),
      field('Base URL', baseUrl),
      field('Model', model),
      field('API key', apiKey, 'Write-only: it is stored sealed and never shown again.'),
      status,
      admin ? h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary' }, 'Save'),
        h('button', { type: 'button', onclick: test }, 'Test connection')) : h('p', { class: 'muted' }, 'Only administrators change plugins.')),
    h('section', { class: 'card', 'aria-label': 'LLM usage' },
      h('h2', {}, 'LLM usage'),
      h('dl', { class: 'stats' },
        h('dt', {}, 'Calls'), h('dd', {}, `${u.calls} (${u.cachedCalls} cached, ${u.failedCalls} failed)`),
        h('dt', {}, 'Input tokens'), h('dd', {}, u.inputTokens.toLocaleString()),
        h('dt', {}, 'Output tokens'), h('dd', {}, u.outputTokens.toLocaleString()),
        h('dt', {}, 'Cost'), h('dd', {}, `$${u.costUsd.toFixed(4)}`))));
}
