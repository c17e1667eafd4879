// On a narrow screen the sidebar and the member list are drawers over the
// messages, opened by their buttons and closed by the scrim or Escape.

export function togglePanel(doc, which) {
  const chat = doc.getElementById('chat-view');
  const cls = which === 'sidebar' ? 'show-sidebar' : 'show-members';
  const open = !chat.classList.contains(cls);
  closePanels(doc);
  if (open) {
    chat.classList.add(cls);
    doc.getElementById('scrim').hidden = false;
    doc.getElementById(which === 'sidebar' ? 'toggle-sidebar' : 'toggle-members').setAttribute('aria-expanded', 'true');
  }
}

export function closePanels(doc) {
  doc.getElementById('chat-view').classList.remove('show-sidebar', 'show-members');
  doc.getElementById('scrim').hidden = true;
  doc.getElementById('toggle-sidebar').setAttribute('aria-expanded', 'false');
  doc.getElementById('toggle-members').setAttribute('aria-expanded', 'false');
}

// bindPanels wires the drawers' buttons, the scrim and Escape.
export function bindPanels(doc) {
  const on = (id, fn) => doc.getElementById(id).addEventListener('click', fn);
  on('toggle-sidebar', () => togglePanel(doc, 'sidebar'));
  on('toggle-members', () => togglePanel(doc, 'members'));
  on('scrim', () => closePanels(doc));
  doc.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') closePanels(doc);
  });
}
