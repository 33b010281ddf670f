// A tiny DOM builder. Text is always set as text (never parsed as HTML),
// so values from papers and users cannot inject markup.

/** h('button', {onclick, class: 'x', 'aria-label': 'y'}, 'text', child, [more]) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'value' || k === 'checked' || k === 'selected' || k === 'multiple') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An SVG element (for charts and icons). */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) {
    if (c === null || c === undefined) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let seq = 0;

/**
 * A labelled form control. The <label for> holds the name only, so the
 * control's accessible name is exactly `label`; a hint describes it.
 */
export function field(label, control, hint) {
  if (!control.id) control.id = `f${++seq}`;
  let hintEl = null;
  if (hint) {
    hintEl = h('span', { class: 'hint', id: `${control.id}-hint` }, hint);
    control.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div', { class: 'field' }, h('label', { for: control.id, class: 'label' }, label), control, hintEl);
}

/** A label and control side by side. */
export function inlineField(label, control) {
  const f = field(label, control);
  f.classList.add('inline');
  return f;
}

/** Opens a modal <dialog> built by `build(close)`; resolves when it closes. */
export function dialog(title, build) {
  return new Promise((resolve) => {
    const d = h('dialog', { 'aria-label': title });
    const close = (v) => { d.close(); d.remove(); resolve(v); };
    d.addEventListener('cancel', (e) => { e.preventDefault(); close(undefined); });
    put(d, h('h2', {}, title), build(close));
    document.body.appendChild(d);
    d.showModal();
    const first = d.querySelector('input, textarea, select, button');
    if (first) first.focus();
  });
}

/** Asks a yes/no question in a dialog. */
export function confirmDialog(title, text, yes) {
  return dialog(title, (close) => h('div', {},
    h('p', {}, text),
    h('div', { class: 'actions' },
      h('button', { class: 'danger', onclick: () => close(true) }, yes),
      h('button', { onclick: () => close(false) }, 'Keep it'))));
}
