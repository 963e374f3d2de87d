// The public page's live part: swaps in the hubs the server sends (server-sent events), writes
// times in the viewer's own zone, and copies a room's address on a click. Without it the page
// still shows everything as it was when loaded.
'use strict';

(function () {
  const hubs = document.getElementById('hubs');
  const live = document.getElementById('live');

  // Each <time datetime> in the viewer's zone; the server's UTC text stays as its tooltip.
  function localise(root) {
    for (const time of root.querySelectorAll('time[datetime]')) {
      const at = new Date(time.getAttribute('datetime'));
      if (Number.isNaN(at.getTime())) continue;
      const today = at.toDateString() === new Date().toDateString();
      const format = today
        ? { hour: '2-digit', minute: '2-digit' }
        : { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' };
      time.title = time.textContent;
      time.textContent = `${at.toLocaleString([], format)} your time`;
    }
    for (const button of root.querySelectorAll('button.copy')) button.hidden = false;
  }

  function say(button, text) {
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = text;
    setTimeout(() => { button.textContent = label; }, 2000);
  }

  // Where the clipboard is refused (plain HTTP is not a secure context), the address is
  // selected instead, for the viewer to copy.
  function select(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.addEventListener('click', async (event) => {
    const button = event.target.closest('button.copy');
    if (!button) return;
    const text = button.dataset.copy;
    try {
      await navigator.clipboard.writeText(text);
      say(button, 'Copied');
    } catch (refused) {
      const endpoint = button.parentElement.querySelector('.endpoint');
      if (endpoint) select(endpoint);
      say(button, 'Selected: copy it');
    }
  });

  localise(document);

  if (!('EventSource' in window)) return;
  const updates = new EventSource('/events');
  updates.addEventListener('hubs', (event) => {
    hubs.innerHTML = event.data;
    localise(hubs);
  });
  updates.addEventListener('open', () => {
    live.hidden = false;
    live.classList.remove('offline');
    live.textContent = 'live';
  });
  updates.addEventListener('error', () => {
    live.hidden = false;
    live.classList.add('offline');
    live.textContent = 'reconnecting…';
  });
})();
