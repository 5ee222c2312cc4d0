// ESLint flat config. typescript-eslint's recommended (syntactic) rules; its type-checked set was measured at
// 75 s and 1.4 GB per run here, too slow for every `npm test`. Layout is Prettier's: eslint-config-prettier turns
// off every rule that would disagree with it, and `prettier --check` runs beside ESLint in `npm run lint`.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'data/', '.bench/', '.tmp/', 'node_modules/', 'profiles/'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    rules: {
      // A leading underscore marks a parameter kept for its position (Express's error handler needs all four);
      // rest siblings drop keys from a copy.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // A `let` assigned once, later, but read earlier by a closure (a shutdown handler) cannot be const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // The scrubbers and input checks match control characters on purpose; that is all this rule reports.
      'no-control-regex': 'off',
      'max-len': [
        'error',
        { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true },
      ],
    },
  },
  {
    // Tests cast on purpose: malformed resources for the validators, loosely typed server answers.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Plain JavaScript run by Node itself: CommonJS (bench/reportUsage.js is preloaded with `node -r`) and ES modules.
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
