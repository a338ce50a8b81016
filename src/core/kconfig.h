/* SPDX-License-Identifier: MIT */
/* IS_ENABLED(CONFIG_X): 1 when the option is y, else 0, usable in plain ifs. */
#ifndef EDGEIMG_KCONFIG_H
#define EDGEIMG_KCONFIG_H

#include "generated/autoconf.h"

#define EI_ARG_PLACEHOLDER_1 0,
#define EI_TAKE_SECOND(ignored, val, ...) val
#define EI_IS_DEFINED3(arg1_or_junk) EI_TAKE_SECOND(arg1_or_junk 1, 0, 0)
#define EI_IS_DEFINED2(val) EI_IS_DEFINED3(EI_ARG_PLACEHOLDER_##val)
#define IS_ENABLED(option) EI_IS_DEFINED2(option)

#endif
