/**
 * The DICOM data model: DICOM JSON datasets and how to read them, the tags the bridge knows, and the table
 * of attributes it reads. Below both src/dicomweb (which fetches datasets from a PACS) and src/mapping
 * (which turns them into FHIR), so the mapper never depends on PACS access.
 */
export * from './dicomJson';
export * from './tags';
export * from './attributes';
