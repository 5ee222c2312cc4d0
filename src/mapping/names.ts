/**
 * DICOM person names (PN) for people to read. The one place names are built: ImagingStudy displays
 * (subject, referrer, interpreter, performer) and the FHIR sink's Patient.name both come from here, so a
 * Patient's name.text always equals the display of the studies that reference it.
 */
import type { HumanName } from 'fhir/r4';
import type { PersonNameGroups } from '../dicom';

export type NameGroup = 'alphabetic' | 'ideographic';

interface NameParts {
  family: string;
  given: string;
  middle: string;
  prefix: string;
  suffix: string;
}

/** Han ideographs, kana and Hangul: names in these scripts read family name first, without spaces. */
const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;

function parts(group: string): NameParts {
  // PN components: family ^ given ^ middle ^ prefix ^ suffix.
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = group
    .split('^')
    .map((c) => c.trim().replace(/\s+/g, ' '));
  return { family, given, middle, prefix, suffix };
}

/**
 * "SMITH^JOHN^Q^DR" → "DR JOHN Q SMITH"; "陳^大文" → "陳大文" in whichever component group it stands
 * (Taiwanese PACS often put Chinese names in the first, alphabetic, group).
 */
function textOf(p: NameParts): string {
  if (CJK.test(p.family + p.given + p.middle)) return [p.family, p.given, p.middle].join('');
  return [p.prefix, p.given, p.middle, p.family, p.suffix].filter(Boolean).join(' ');
}

/** One PN component group → HumanName (official), text in reading order. Undefined when it says nothing. */
export function humanName(group: string): HumanName | undefined {
  const p = parts(group);
  const text = textOf(p);
  if (!text) return undefined;
  const name: HumanName = { use: 'official', text };
  if (p.family) name.family = p.family;
  const given = [p.given, p.middle].filter(Boolean);
  if (given.length) name.given = given;
  if (p.prefix) name.prefix = [p.prefix];
  if (p.suffix) name.suffix = [p.suffix];
  return name;
}

/** The preferred group as a HumanName, else the other group, else the phonetic one. */
export function personHumanName(name: PersonNameGroups | undefined, prefer: NameGroup): HumanName | undefined {
  if (!name) return undefined;
  const order = prefer === 'ideographic' ? [name.Ideographic, name.Alphabetic] : [name.Alphabetic, name.Ideographic];
  for (const group of [...order, name.Phonetic]) {
    const built = group ? humanName(group) : undefined;
    if (built) return built;
  }
  return undefined;
}

/** The name as display text (Reference.display): exactly personHumanName's text. */
export function personNameText(name: PersonNameGroups | undefined, prefer: NameGroup): string | undefined {
  return personHumanName(name, prefer)?.text;
}
