/** DICOM Laterality / Image Laterality → the R4 bodysite-laterality value set (SNOMED CT). U = unpaired: none. */
export const LATERALITY_SNOMED: Readonly<Record<string, { code: string; display: string }>> = {
  L: { code: '419161000', display: 'Unilateral left' },
  R: { code: '419465000', display: 'Unilateral right' },
  B: { code: '51440002', display: 'Right and left' },
};

/** R4 series-performer-function codes (v3 ParticipationType) for the two DICOM performer attributes. */
export const PERFORMER_FUNCTION = {
  /** Performing Physician's Name (0008,1050). */
  performer: { code: 'PRF', display: 'performer' },
  /** Operators' Name (0008,1070). */
  operator: { code: 'SPRF', display: 'secondary performer' },
} as const;
