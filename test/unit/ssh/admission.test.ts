import { describe, expect, it } from 'vitest';
import { createAdmission, PREAUTH } from '../../../src/ssh/admission.js';

describe('ssh/admission', () => {
  function setUp(random = () => 1) {
    let t = 0;
    const clock = { now: () => t, advance: (ms: number) => (t += ms) };
    return { clock, admission: createAdmission({ maxAuthFailures: () => 3, now: clock.now, random }) };
  }

  it('refuses an address with too many failed logins in the last minute, and lets it back after', () => {
    const { clock, admission } = setUp();
    for (let i = 0; i < 3; i++) admission.failed('10.0.0.9');
    expect(admission.connection('10.0.0.9')).toEqual({ admitted: false, why: 'too many failed logins', log: true });
    // Said once a minute, not for every connection of a flood.
    expect(admission.connection('10.0.0.9')).toMatchObject({ admitted: false, log: false });
    expect(admission.connection('10.0.0.8').admitted).toBe(true);
    clock.advance(60_001);
    expect(admission.connection('10.0.0.9').admitted).toBe(true);
  });

  it('holds at most PREAUTH.perSource connections authenticating from one address', () => {
    const { admission } = setUp();
    const slots = Array.from({ length: PREAUTH.perSource }, () => admission.connection('10.0.0.1'));
    expect(slots.every((s) => s.admitted)).toBe(true);
    expect(admission.connection('10.0.0.1')).toMatchObject({ admitted: false, why: 'too many authenticating from this address' });
    const first = slots[0]!;
    if (first.admitted) {
      first.authenticated();
      first.authenticated(); // twice (login, then close) frees one slot, not two
    }
    expect(admission.connection('10.0.0.1').admitted).toBe(true);
    expect(admission.connection('10.0.0.1').admitted).toBe(false);
    expect(admission.authenticating()).toBe(PREAUTH.perSource);
  });

  it('drops new connections at random once PREAUTH.start are authenticating, all of them at PREAUTH.full', () => {
    let roll = 0.99;
    const { admission } = setUp(() => roll);
    for (let i = 0; i < PREAUTH.start; i++) expect(admission.connection(`10.1.0.${i}`).admitted).toBe(true);
    roll = PREAUTH.rate - 0.01;
    expect(admission.connection('10.2.0.1')).toMatchObject({ admitted: false, why: 'too many authenticating in all' });
    roll = PREAUTH.rate + 0.01;
    expect(admission.connection('10.2.0.2').admitted).toBe(true);
  });

  it('counts sessions per user, and says when none is left open', async () => {
    const { admission } = setUp();
    const a = admission.session('alice', 2);
    const b = admission.session('alice', 2);
    expect(admission.session('alice', 2)).toEqual({ admitted: false, count: 2 });
    expect(admission.session('bob', 2).admitted).toBe(true);
    expect(admission.sessions()).toBe(3);
    let idle = false;
    void admission.idle().then(() => (idle = true));
    if (a.admitted) a.release();
    if (b.admitted) b.release();
    expect(admission.session('alice', 2).admitted).toBe(true);
    await Promise.resolve();
    expect(idle).toBe(false);
  });
});
