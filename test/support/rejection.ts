import { SkiffError } from '../../src/errors.js';

/** The SkiffError a promise rejects with; anything else (or no rejection) fails the test. */
export async function rejection(promise: Promise<unknown>): Promise<SkiffError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof SkiffError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}
