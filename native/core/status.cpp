#include "status.hpp"

namespace mqc {

const char* statusName(Status s) {
  switch (s) {
    case Status::Ok:
      return "ok";
    case Status::DuplicateId:
      return "ERR_DUPLICATE_ID";
    case Status::UnknownId:
      return "ERR_UNKNOWN_ID";
    case Status::InFlight:
      return "ERR_IN_FLIGHT";
    case Status::NotInFlight:
      return "ERR_NOT_IN_FLIGHT";
    case Status::BadDomain:
      return "ERR_UNKNOWN_DOMAIN";
    case Status::BadBinding:
      return "ERR_UNKNOWN_BINDING";
    case Status::BadArgument:
      return "ERR_OUT_OF_RANGE";
    case Status::UnknownConnection:
      return "ERR_UNKNOWN_CONNECTION";
    case Status::TooMany:
      return "ERR_TOO_MANY";
    case Status::DomainInUse:
      return "ERR_DOMAIN_IN_USE";
    case Status::DomainHeld:
      return "ERR_DOMAIN_HELD";
  }
  return "ERR_UNKNOWN_STATUS";
}

}  // namespace mqc
