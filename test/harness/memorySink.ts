/**
 * A Sink double for sync tests: holds what it is given, and answers per study as the test says — accepted,
 * rejected (the study's fault: a 422), every study unavailable (the server down, as the FHIR sink reports it
 * after its retries), or a thrown error for the whole batch. `onWrite` lets a test act mid-run (request a stop).
 */
import type { Sink, StudyWrite, WriteOutcome } from '../../src/sinks/sink';

export class MemorySink implements Sink {
  /** Every batch handed to writeBatch, as its study UIDs, in order. */
  readonly batches: string[][] = [];
  /** The last accepted write per study UID, and how many times it was written with new content. */
  readonly held = new Map<string, { write: StudyWrite; version: number }>();
  readonly removals: { studyUid: string; action: 'entered-in-error' | 'delete' }[] = [];
  /** While set, every study of a batch is answered `unavailable` with this error. */
  unavailable: string | undefined;
  /** While set, writeBatch throws this for the whole batch. */
  throwing: Error | undefined;
  /** Awaited with each batch before it is answered. */
  onWrite: ((writes: StudyWrite[]) => void | Promise<void>) | undefined;
  private readonly rejections = new Map<string, { error: string; retryable: boolean }>();

  constructor(readonly name = 'fhir') {}

  /** From now on this study is refused with `error` (until `accept`). */
  reject(studyUid: string, error = 'HTTP 422', retryable = false): void {
    this.rejections.set(studyUid, { error, retryable });
  }

  accept(studyUid: string): void {
    this.rejections.delete(studyUid);
  }

  async writeBatch(writes: StudyWrite[]): Promise<WriteOutcome[]> {
    this.batches.push(writes.map((w) => w.studyUid));
    await this.onWrite?.(writes);
    if (this.throwing) throw this.throwing;
    return writes.map((w) => this.answer(w));
  }

  async removeStudy(_sourceId: string, studyUid: string, action: 'entered-in-error' | 'delete'): Promise<void> {
    this.removals.push({ studyUid, action });
    if (action === 'delete') this.held.delete(studyUid);
  }

  private answer(w: StudyWrite): WriteOutcome {
    const { studyUid } = w;
    if (this.unavailable !== undefined)
      return { studyUid, ok: false, error: this.unavailable, retryable: true, unavailable: true };
    const rejection = this.rejections.get(studyUid);
    if (rejection) return { studyUid, ok: false, ...rejection };
    const before = this.held.get(studyUid);
    const unchanged = before?.write.contentHash === w.contentHash;
    const version = unchanged ? before!.version : (before?.version ?? 0) + 1;
    this.held.set(studyUid, { write: w, version });
    return { studyUid, ok: true, resourceId: w.imagingStudy.id ?? studyUid, versionId: String(version), unchanged };
  }
}
