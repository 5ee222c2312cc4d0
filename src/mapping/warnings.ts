/** Warnings collected while mapping one study. Patient attributes never carry their values into messages. */
import { type ValueProblem, describeTag } from '../dicom';
import type { MappingWarning } from './types';

/** Group 0010 is the Patient module: names, IDs, birth dates. */
function isPatientTag(tag: string): boolean {
  return tag.toUpperCase().startsWith('0010');
}

export class WarningList {
  readonly items: MappingWarning[] = [];
  studyUid?: string;

  add(code: string, message: string, tag?: string): void {
    const w: MappingWarning = { code, message };
    if (this.studyUid) w.studyUid = this.studyUid;
    if (tag) w.tag = tag;
    this.items.push(w);
  }

  /** Each malformed value becomes a warning; the element it would have filled is left out. */
  problems(problems: readonly ValueProblem[], where?: string): void {
    for (const p of problems) {
      const redacted = isPatientTag(p.tag);
      const message = redacted ? `${describeTag(p.tag)}: malformed value (${p.kind}); value withheld` : p.message;
      const w: MappingWarning = { code: p.kind, message: where ? `${where}: ${message}` : message, tag: p.tag };
      if (this.studyUid) w.studyUid = this.studyUid;
      w.problem = redacted ? { ...p, raw: '[withheld]', message } : p;
      this.items.push(w);
    }
  }
}
