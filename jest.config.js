/** Unit tests run in parallel; integration tests each start their own Orthanc on free loopback ports. */
module.exports = {
  // Node's environment plus a per-worker cache, so the validator's definitions load once per worker.
  testEnvironment: '<rootDir>/test/harness/jestEnvironment.ts',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json' }] },
  testTimeout: 60000,
  maxWorkers: 2,
};
