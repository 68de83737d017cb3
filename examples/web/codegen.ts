// GraphQL Code Generator: types for every operation in src/operations/*.graphql,
// from the server's schema (schema.graphql at the repository root, which a Rust test
// keeps current). `npm run codegen` writes src/gql/, which is committed; CI runs it
// again and fails when the result differs.
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../../schema.graphql',
  documents: ['src/operations/*.graphql'],
  ignoreNoDocuments: false,
  generates: {
    'src/gql/': {
      preset: 'client',
      presetConfig: {
        // Fragments here name shared selections (a row, a case file), not
        // component-owned data: their fields are read where the query is.
        fragmentMasking: false,
      },
      config: {
        // String unions rather than TypeScript enums: no runtime code.
        enumsAsTypes: true,
        useTypeImports: true,
        // Only the types the operations use, not the whole schema.
        onlyOperationTypes: true,
        // Every custom scalar mapped, so none becomes `any`.
        strictScalars: true,
        scalars: {
          DateTime: 'string',
          Date: 'string',
          JSON: 'unknown',
        },
      },
    },
  },
};

export default config;
