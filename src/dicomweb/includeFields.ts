/**
 * The attributes asked for at each QIDO level: exactly what the mapper reads, derived from its table
 * (src/dicom/attributes.ts), so there is one place to add an attribute. Never `includefield=all`:
 * Orthanc's DICOMweb plugin ignores it, and StudyDescription is not a default return attribute
 * (PS3.18 Table 6.7.1-2).
 */
import { attributesOf } from '../dicom';

export const STUDY_INCLUDE_FIELDS: readonly string[] = attributesOf('study');
export const SERIES_INCLUDE_FIELDS: readonly string[] = attributesOf('series');
export const INSTANCE_INCLUDE_FIELDS: readonly string[] = attributesOf('instance');
