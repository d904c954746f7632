import type { Dashboard } from '@grafana/schema';

// The JSON shape of T: enums become the values they stand for (JSON holds
// "thresholds", never FieldColorModeId.Thresholds) and arrays may be
// readonly (the dashboard is an `as const` literal, which keeps string
// literals instead of widening them to `string`).
export type JsonOf<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? ReadonlyArray<JsonOf<U>>
      : T extends object
        ? { readonly [K in keyof T]: JsonOf<T[K]> }
        : T;

export type DashboardJson = JsonOf<Dashboard>;
