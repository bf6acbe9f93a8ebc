'use strict';
// SharedMemory: a store for Limiter and Policy whose tables live in a file mapping (usually
// under /dev/shm) that every worker process of the host uses at once, in any runtime:
// `new Limiter('100/minute', { store: new SharedMemory('/dev/shm/myapp') })` in every worker
// of a cluster is 100 per minute for the host. The table is cellgate-host's (node/src/store.rs).

const { native } = require('./boundary');
const { argTypeError, fromNative } = require('./errors');
const validate = require('./validate');

const ACCESS = ['owner', 'group'];

/**
 * A shared-memory table file. `path` is created on first use (mode 0600, or 0660 with
 * `access: 'group'`) and attached to by every later process; `allowOtherOwner` accepts a file
 * created by another user. Every process must configure the same quotas, refill and
 * `maxKeys` (else a `SharedMemoryError` with code `ERR_CELLGATE_SHARED_CONFIG_MISMATCH` names
 * the field). The file persists across restarts until `SharedMemory.remove(path)`; a table is
 * never resized. Whoever can write the file can reset anyone's limit.
 */
class SharedMemory {
  #path;
  #access;
  #allowOtherOwner;

  constructor(path, options) {
    if (typeof path !== 'string' || path === '') throw argTypeError('path', 'a non-empty string (a file path, e.g. /dev/shm/myapp)', path);
    if (path.includes('\0')) throw argTypeError('path', 'a path without NUL characters', path);
    const opts = validate.options(options, 'options');
    for (const name of Object.keys(opts)) {
      if (name !== 'access' && name !== 'allowOtherOwner') throw argTypeError(`options.${name}`, "not given: SharedMemory's options are access and allowOtherOwner", opts[name]);
    }
    this.#access = opts.access === undefined ? 'owner' : validate.oneOf(opts.access, 'options.access', ACCESS);
    if (opts.allowOtherOwner !== undefined && typeof opts.allowOtherOwner !== 'boolean') {
      throw argTypeError('options.allowOtherOwner', 'a boolean', opts.allowOtherOwner);
    }
    this.#allowOtherOwner = opts.allowOtherOwner === true;
    this.#path = path;
    Object.freeze(this);
  }

  /** The table file's path. */
  get path() {
    return this.#path;
  }

  /** `'owner'` (0600) or `'group'` (0660). */
  get access() {
    return this.#access;
  }

  /** Whether a file owned by another user is accepted. */
  get allowOtherOwner() {
    return this.#allowOtherOwner;
  }

  /**
   * Removes the table file at `path`; `true` if there was one. Processes that still map it
   * keep using their copy; the next open creates a fresh table.
   */
  static remove(path) {
    if (typeof path !== 'string' || path === '') throw argTypeError('path', 'a non-empty string', path);
    try {
      return native.removeSharedTable(path);
    } catch (error) {
      throw fromNative(error);
    }
  }
}

/** The native settings of `options.store` (none: in process); a store that is not a SharedMemory is a TypeError. */
function storeSettings(store) {
  if (store === undefined) return {};
  if (!(store instanceof SharedMemory)) throw argTypeError('options.store', 'a SharedMemory', store);
  return { storePath: store.path, storeAccess: store.access, storeAllowOtherOwner: store.allowOtherOwner };
}

module.exports = { SharedMemory, storeSettings };
