/* Ending a run (the test finisher) and the default trap handler. */
#include "console.h"
#include "vmxu.h"

void vmxu_exit(int code)
{
    volatile uint32_t *finisher = (volatile uint32_t *)VMXU_FINISHER_BASE;
    uint32_t failure = (uint32_t)code & 0xFFFFu;
    *finisher = code == 0 ? VMXU_FINISHER_PASS : VMXU_FINISHER_FAIL(failure ? failure : 1u);
    for (;;)
        ;
}

void vmxu_trap_default(struct vmxu_trap_frame *frame)
{
    printf("\ntrap: mcause=%08x mepc=%08x mtval=%08x\n", frame->mcause, frame->mepc, frame->mtval);
    vmxu_exit((int)VMXU_EXIT_TRAP(frame->mcause));
}

__attribute__((weak)) void vmxu_trap(struct vmxu_trap_frame *frame)
{
    vmxu_trap_default(frame);
}
