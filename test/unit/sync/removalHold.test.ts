/**
 * The rule that holds a mass removal for a person (reconcile.maxRemovals): the limit is the smaller of a count
 * and a share of the source's studies, and an operator's confirmation covers as many as the hold it confirmed.
 */
import { maxRemovalsOf, syncSchema, syncSettingsFor } from '../../../src/sync/config';
import { describeHold, heldRemovals, removalLimit } from '../../../src/sync/reconcile';

const defaults = maxRemovalsOf(syncSettingsFor(syncSchema.parse({}), 'pacs'));

describe('reconcile.maxRemovals', () => {
  it('defaults to 50 studies and 10 % of the source', () => {
    expect(defaults).toEqual({ count: 50, share: 0.1 });
  });

  it('lets 3 of 100 through and holds 80 of 100 with the defaults', () => {
    expect(heldRemovals({ removals: 3, studies: 100, max: defaults })).toBeUndefined();
    expect(heldRemovals({ removals: 80, studies: 100, max: defaults })).toEqual({ removals: 80, of: 100, limit: 10 });
  });

  it('holds what exceeds either bound: the share on a small source, the count on a large one', () => {
    expect(removalLimit(defaults, 100)).toBe(10);
    expect(heldRemovals({ removals: 10, studies: 100, max: defaults })).toBeUndefined();
    expect(heldRemovals({ removals: 11, studies: 100, max: defaults })).toMatchObject({ limit: 10 });
    expect(removalLimit(defaults, 1_000_000)).toBe(50);
    expect(heldRemovals({ removals: 51, studies: 1_000_000, max: defaults })).toMatchObject({ limit: 50 });
    expect(heldRemovals({ removals: 50, studies: 1_000_000, max: defaults })).toBeUndefined();
    // Fewer than 10 studies: with a 10 % share every removal waits for a person.
    expect(heldRemovals({ removals: 1, studies: 9, max: defaults })).toMatchObject({ limit: 0 });
  });

  it('takes the share exactly, not a floating-point hair under it', () => {
    expect(removalLimit({ count: 1000, share: 0.29 }, 100)).toBe(29);
    expect(removalLimit({ count: 1000, share: 0.07 }, 100)).toBe(7);
  });

  it('a count of 0 holds every removal', () => {
    expect(heldRemovals({ removals: 1, studies: 1000, max: { count: 0, share: 1 } })).toMatchObject({ limit: 0 });
  });

  it('a confirmation covers as many as it confirmed, not more', () => {
    expect(heldRemovals({ removals: 80, studies: 100, max: defaults, confirmed: 80 })).toBeUndefined();
    expect(heldRemovals({ removals: 60, studies: 100, max: defaults, confirmed: 80 })).toBeUndefined();
    expect(heldRemovals({ removals: 81, studies: 100, max: defaults, confirmed: 80 })).toEqual({
      removals: 81,
      of: 100,
      limit: 10,
    });
  });

  it('a source override of another reconcile field keeps the global limit', () => {
    const sync = syncSchema.parse({
      reconcile: { maxRemovals: { count: 5 } },
      sources: { a: { reconcile: { deletion: 'delete' } }, b: { reconcile: { maxRemovals: { count: 7, share: 1 } } } },
    });
    expect(maxRemovalsOf(syncSettingsFor(sync, 'a'))).toEqual({ count: 5, share: 0.1 });
    expect(maxRemovalsOf(syncSettingsFor(sync, 'b'))).toEqual({ count: 7, share: 1 });
  });

  it('rejects a share above 1 and a fractional count', () => {
    expect(() => syncSchema.parse({ reconcile: { maxRemovals: { share: 1.5 } } })).toThrow();
    expect(() => syncSchema.parse({ reconcile: { maxRemovals: { count: 2.5 } } })).toThrow();
  });

  it('says the numbers and what to do, and whether it was confirmed', () => {
    const hold = { removals: 80, of: 100, limit: 10 };
    expect(describeHold(hold)).toMatch(
      /would remove 80 of 100 studies \(more than the 10 .*removed none.*--confirm-removals/,
    );
    expect(describeHold({ ...hold, confirmedAt: '2025-03-01T10:00:00.000Z' })).toMatch(
      /confirmed at 2025-03-01T10:00:00.000Z, the next sweep applies them/,
    );
  });
});
