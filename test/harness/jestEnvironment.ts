/**
 * Jest's Node environment plus one object per jest worker that outlives each test file's module registry
 * (this module is loaded once per worker; test files get fresh registries). src/mapping/profiles.ts keeps the
 * validator's definitions in it, so they are built once per worker instead of once per test file.
 */
import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';
import { TestEnvironment } from 'jest-environment-node';

const perWorker: Record<string, unknown> = {};

export default class BridgeTestEnvironment extends TestEnvironment {
  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    super(config, context);
    this.global.__pacsFhirBridgeWorkerCache = perWorker;
  }
}
