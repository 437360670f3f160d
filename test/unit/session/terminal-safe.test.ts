import { describe, expect, it } from 'vitest';
import { terminalSafe, terminalSafeLine } from '../../../src/session/terminal-safe.js';

describe('terminalSafe', () => {
  it('removes escape sequences a hostile build prints: title, clear screen, cursor moves, 8-bit CSI', () => {
    const hostile = 'Step 2/3 : RUN echo \u001b]0;pwned\u0007\u001b[2J\u001b[1;1Hhi\u009b31mred\u001bc done';
    expect(terminalSafe(hostile)).toBe('Step 2/3 : RUN echo hi31mred done');
  });

  it('keeps printable text, tabs, newlines and non-ASCII letters', () => {
    expect(terminalSafe('a\tb\nc é ü 漢\r\u0000\u0007')).toBe('a\tb\nc é ü 漢');
    expect(terminalSafeLine('one\ntwo')).toBe('one two');
  });

  it('removes an unterminated OSC to the end rather than letting it swallow the terminal', () => {
    expect(terminalSafe('ok \u001b]52;c;ZXZpbA==')).toBe('ok ');
  });
});
