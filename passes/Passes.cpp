// Anchor translation unit of DSPasses (registration is generated in Passes.h.inc).
#include "passes/Passes.h"
