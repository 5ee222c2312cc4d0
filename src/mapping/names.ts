/** DICOM person names (PN) as text for people to read (Reference.display). */
import type { PersonNameGroups } from '../dicomweb/dicomJson';

export type NameGroup = 'alphabetic' | 'ideographic';

function components(group: string): string[] {
  // PN components: family ^ given ^ middle ^ prefix ^ suffix.
  return group.split('^').map((c) => c.trim().replace(/\s+/g, ' '));
}

/** "SMITH^JOHN^Q^DR" → "DR JOHN Q SMITH": the alphabetic group in reading order. */
function alphabeticText(group: string): string {
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = components(group);
  return [prefix, given, middle, family, suffix].filter(Boolean).join(' ');
}

/** "陳^大文" → "陳大文": CJK names read family name first, without spaces. */
function ideographicText(group: string): string {
  const [family = '', given = '', middle = ''] = components(group);
  return [family, given, middle].join('');
}

/** The chosen group as text, falling back to the other group when the chosen one is absent. */
export function personNameText(name: PersonNameGroups | undefined, prefer: NameGroup): string | undefined {
  if (!name) return undefined;
  const alpha = name.Alphabetic ? alphabeticText(name.Alphabetic) : '';
  const ideo = name.Ideographic ? ideographicText(name.Ideographic) : '';
  const text = prefer === 'ideographic' ? ideo || alpha : alpha || ideo;
  return text || (name.Phonetic ? alphabeticText(name.Phonetic) : undefined) || undefined;
}
