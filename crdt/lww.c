#include "lww.h"
