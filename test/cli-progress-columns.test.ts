// The progress bar on a terminal that reports no width.
import t from 'tap';

import { ProgressBar } from '../server/cli/progress-bar.js';

t.test('a terminal that reports 0 columns gets the bar as an 80-column one would', async (t) => {
  for (const columns of [0, undefined]) {
    let text = '';
    new ProgressBar({ isTTY: true, columns, write: (chunk: string) => { text += chunk; } }, 0)
      .draw({ label: 'image 1/1', done: 5, total: 20, rate: '1.25 s/step', etaSeconds: 43 });
    t.equal(text, '\r\x1b[2Kimage 1/1 ▕██████░░░░░░░░░░░░░░░░░░▏ 5/20  1.25 s/step  ETA 0:43', `columns ${columns}`);
  }
});
