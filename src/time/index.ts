/** The time layer: DICOM date/time values, day arithmetic and zone offsets. Imports nothing above it. */
export * from './dicomDate';
export * from './days';
export * from './zone';
export * from './fhirDateTime';
