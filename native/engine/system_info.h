// Facts about this machine and build that the engine needs (thread defaults) or reports.
#pragma once

namespace sdnode {

int physicalCores();

}  // namespace sdnode
