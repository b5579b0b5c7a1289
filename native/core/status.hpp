// Status values reported by the core. The core never throws and never calls JavaScript; the addon
// glue maps each value to a TypeError, RangeError or an Error with a `code` (see native/addon).
#pragma once

namespace mqc {

enum class Status : int {
  Ok = 0,
  DuplicateId,  // the id is already queued or in flight
  UnknownId,    // no message with that id
  InFlight,     // the message is held by a connection (or a caller that took it)
  NotInFlight,  // settle/defer/untake on a message that is queued, not taken
  BadDomain,    // domain index out of range
  BadBinding,   // binding slot out of range
  BadArgument,  // a number out of its documented range
  UnknownConnection,
  TooMany,  // a table would pass its hard size limit
  // forgetDomain: the domain holds a message (active, delayed or in flight) or a connection; it is
  // noted as idle again when it empties.
  DomainInUse,
  // forgetDomain: the domain is suspended, or a grant or expired message naming it is not drained
  // yet; ask again later.
  DomainHeld,
};

const char* statusName(Status s);

}  // namespace mqc
