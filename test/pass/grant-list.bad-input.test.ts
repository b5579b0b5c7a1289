// Bad input of the GrantList kind: maintain(now, { into }) with something that is not a GrantList
// of this core. The pass does not start, and nothing changes. Rows, fixture and checks: see
// test/support/bad_input.ts; a bad index into a list and grantList() on a closed core are in
// test/pass/grant-list.test.ts ('bad input').
import { describe } from 'vitest';

import { any, type Row, rowTests } from '../support/bad_input.js';

const rows: Row[] = [
  {
    api: 'maintain',
    what: 'options.into an array',
    run: (c) => c.core.maintain(undefined, { into: any([]) }),
    throws: TypeError,
    message: /^options.into must be a GrantList/,
  },
  {
    api: 'maintain',
    what: 'options.into null',
    run: (c) => c.core.maintain(undefined, { into: any(null) }),
    throws: TypeError,
    message: /^options.into must be a GrantList/,
  },
  {
    api: 'maintain',
    what: 'options.into of another core',
    run: (c) => c.core.maintain(undefined, { into: c.other.grantList() }),
    throws: RangeError,
    message: /^options.into: a GrantList of another core/,
  },
];

describe('GrantList: a bad list passed to maintain() throws the documented error and changes nothing', () => {
  rowTests(rows);
});
