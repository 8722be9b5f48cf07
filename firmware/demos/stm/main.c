/* stm: SMI redirection through SMBASE under the dual-monitor treatment (docs/smm-soc.md, docs/smm.md).
 *
 * Boot: the first SMI (an OUT to port 0xB2) enters SMM at the reset SMBASE (0x30000: its handler at
 * 0x38000 is RAM 0x18000 through the SMRAM alias); the legacy SMM handler relocates SMBASE (the save
 * map's field, reloaded by RSM) to __smbase_relocated, so that its entry is its own address, and
 * registers the STM's MSEG in IA32_SMM_MONITOR_CTL (writable only in SMM).
 *
 * The VMM enters VMX operation and activates the dual-monitor treatment with VMCALL: an exit to the
 * STM, whose state comes from the MSEG header. The STM takes the VMCS current at the activation as its
 * SMM-transfer VMCS, points its host state at its own entry and returns to the VMM (VMLAUNCH: a VM entry
 * that returns from SMM to VMX root operation). The VMM launches a guest. Each OUT to port 0xB2 in the
 * guest is an SMM VM exit (reason 5, the I/O SMI) to the STM, which reads the SMBASE register and runs
 * the legacy handler in a VM of its own with "entry to SMM", at SMBASE + 0x8000. The handler answers the
 * guest's request through a mailbox, finds the STM's MSEG closed to it, and its RSM is a VM exit (17) to
 * the STM, which resumes the guest through the SMM-transfer VMCS (a VM entry that returns from SMM to the
 * guest, the executive VMCS). The guest's VMCALL ends it: the VMM's VMXOFF fails (23) while the STM is
 * active, a VMCALL asks the STM to deactivate, and VMXOFF then succeeds.
 *
 * The core's other registers are the software's: the legacy handler saves those of the code it
 * interrupted on that code's stack, the STM those of the guest (or of the VMM) on its own stack.
 */
#include "console.h"
#include "vmm.h"
#include "vmxu.h"
#include "vmxu_guest.h"

extern char __smbase_relocated[], __mseg_base[]; /* link.ld */
#define SMBASE_NEW ((uint32_t)(uintptr_t)__smbase_relocated)
#define MSEG ((uint32_t)(uintptr_t)__mseg_base)
#define RSM_INSN ".insn r " VMM_STR(VMXU_OPCODE_CUSTOM0) ", " VMM_STR(VMXU_INSN_RSM_FUNCT3) ", " \
                 VMM_STR(VMXU_INSN_RSM_FUNCT7) ", x0, x0, x0"

static uint8_t vmxon_region[VMXU_VMCS_REGION_BYTES] __attribute__((aligned(4096)));
static uint8_t transfer_vmcs[VMXU_VMCS_REGION_BYTES] __attribute__((aligned(4096))); /* the SMM-transfer VMCS */
static uint8_t guest_vmcs[VMXU_VMCS_REGION_BYTES] __attribute__((aligned(4096)));
static uint32_t guest_stack[1024] __attribute__((aligned(16)));
static uint32_t host_stack[1024] __attribute__((aligned(16)));
/* The guest's request to SMM and the legacy handler's answer (ordinary RAM, as a PC's SMI buffer). */
static volatile uint32_t mailbox[2];
void vmxu_trap_entry(void); /* crt0.S: the guest's trap vector too */

/* -- the legacy SMM handler, in SMRAM ---------------------------------------------------------------- */

uint32_t smm_stack[512] __attribute__((section(".smram.data"), aligned(16))); /* the handler's stack (smm_entry) */
static volatile uint32_t smm_relocated __attribute__((section(".smram.data")));

/* At SMBASE + 0x8000: the interrupted code's registers onto its stack, a jump to the handler's linked
 * address (the first SMI runs this through the alias at 0x38000), the SMRAM stack, RSM. */
__asm__(".section .smram.entry, \"ax\"\n"
        ".globl smm_entry\n"
        "smm_entry:\n"
        "    addi sp, sp, -128\n"
        "    sw x1, 4(sp)\n"
        "    .irp reg, 3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "    sw x\\reg, (\\reg * 4)(sp)\n"
        "    .endr\n"
        "    mv s0, sp\n"
        "    lui sp, %hi(smm_stack + 2048)\n"
        "    addi sp, sp, %lo(smm_stack + 2048)\n"
        "    lui t0, %hi(legacy_smi)\n"
        "    jalr ra, %lo(legacy_smi)(t0)\n"
        "    mv sp, s0\n"
        "    lw x1, 4(sp)\n"
        "    .irp reg, 3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "    lw x\\reg, (\\reg * 4)(sp)\n"
        "    .endr\n"
        "    addi sp, sp, 128\n"
        "    " RSM_INSN "\n"
        ".text\n");

__attribute__((section(".smram.text"), used)) void legacy_smi(void)
{
    if (!smm_relocated) {
        /* The first SMI, at the reset SMBASE: relocate (SDM 34.11) and register the STM (34.15.5). */
        uint32_t smbase = (uint32_t)rdmsr(IA32_SMBASE);
        *(volatile uint32_t *)(uintptr_t)(smbase + VMXU_SMM_SAVE_SMBASE) = SMBASE_NEW;
        wrmsr(IA32_SMM_MONITOR_CTL, MSEG | SMM_MONITOR_CTL_VALID);
        smm_relocated = 1;
        printf("smm: SMI at SMBASE %05x: relocating SMBASE to %05x; the STM's MSEG is at %05x\n", smbase, SMBASE_NEW,
               MSEG);
        return;
    }
    uint32_t request = mailbox[0];
    printf("legacy: SMI request %u; answering %u\n", request, request * 100u);
    mailbox[1] = request * 100u;
    volatile uint32_t *stm = (volatile uint32_t *)(uintptr_t)MSEG;
    stm[0] = 0x0BADu;
    printf("legacy: the STM's MSEG reads %08x here; my write to it was dropped\n", stm[0]);
}

/* -- the STM, in MSEG ------------------------------------------------------------------------------------ */

/* The MSEG header (SDM 34.15.6.2), the STM's entry (the activation's RIP and every SMM VM exit's HOST_RIP:
 * the interrupted registers onto its stack), the returns that restore them, the entry for the legacy
 * handler's exits (below the saved registers), and the stack. One section, so the offsets are constants. */
void stm_entry(void), stm_rsm_entry(void);
__attribute__((noreturn)) void stm_launch_executive(void), stm_resume_executive(void);
extern uint32_t stm_stack_top[], stm_frame[];
__asm__(".section .mseg.header, \"awx\"\n"
        "stm_header:\n"
        "    .word " VMM_STR(MSEG_REVISION_ID) ", 0, 0, 0, 8, stm_entry - stm_header, stm_stack_top - stm_header, 0\n"
        ".globl stm_entry\n"
        "stm_entry:\n"
        "    addi sp, sp, -128\n"
        "    sw x1, 4(sp)\n"
        "    .irp reg, 3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "    sw x\\reg, (\\reg * 4)(sp)\n"
        "    .endr\n"
        "    call stm_main\n"
        ".globl stm_launch_executive, stm_resume_executive\n"
        "stm_launch_executive:\n"
        "    la sp, stm_frame\n"
        "    .irp reg, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "    lw x\\reg, (\\reg * 4)(sp)\n"
        "    .endr\n"
        "    " VMM_ASM_VMX(VMXU_INSN_VMLAUNCH_FUNCT7) ", x0, x0, x0\n"
        "    call stm_failed\n"
        "stm_resume_executive:\n"
        "    la sp, stm_frame\n"
        "    .irp reg, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "    lw x\\reg, (\\reg * 4)(sp)\n"
        "    .endr\n"
        "    " VMM_ASM_VMX(VMXU_INSN_VMRESUME_FUNCT7) ", x0, x0, x0\n"
        "    call stm_failed\n"
        ".globl stm_rsm_entry\n"
        "stm_rsm_entry:\n"
        "    call stm_rsm\n"
        "    .balign 16\n"
        "    .space 4096\n"
        ".globl stm_frame, stm_stack_top\n"
        "stm_frame:\n"
        "    .space 128\n"
        "stm_stack_top:\n"
        ".text\n");

static uint8_t legacy_vmcs[VMXU_VMCS_REGION_BYTES] __attribute__((section(".mseg.data"), aligned(4096)));
static uint32_t stm_transfer __attribute__((section(".mseg.data"))); /* the SMM-transfer VMCS pointer */

__attribute__((section(".mseg.text"), noreturn, used)) void stm_failed(void)
{
    printf("stm: VM entry failed: error %u\n", vm_instruction_error());
    vmxu_exit(5);
}

/* Past the instruction that exited (VMCALL). */
__attribute__((section(".mseg.text"))) static void stm_skip_instruction(void)
{
    vmwrite(VMCS_GUEST_RIP, vmcs_field(VMCS_GUEST_RIP) + vmcs_field(VMCS_VM_EXIT_INSTRUCTION_LEN));
}

/* Run the legacy handler at SMBASE + 0x8000 in a VM with "entry to SMM", on the interrupted code's stack as
 * the default treatment would; its RSM exits (17) to stm_rsm_entry. */
__attribute__((section(".mseg.text"), noreturn)) static void stm_run_legacy(uint32_t smbase)
{
    uint32_t rsp = vmcs_field(VMCS_GUEST_RSP);
    vmptrst(&stm_transfer);
    if (vmm_load_vmcs(legacy_vmcs) != 0)
        vmxu_exit(6);
    vmcs_set_bits(VMCS_VM_ENTRY_CONTROLS, VMX_ENTRY_SMM);
    vmwrite(VMCS_GUEST_RIP, smbase + VMXU_SMM_ENTRY_OFFSET);
    vmwrite(VMCS_GUEST_RSP, rsp);
    vmwrite(VMCS_GUEST_INTERRUPTIBILITY_INFO, X86_INTERRUPTIBILITY_BLOCKING_BY_SMI); /* "entry to SMM" needs it */
    vmwrite(VMCS_HOST_RIP, (uint32_t)(uintptr_t)stm_rsm_entry);
    vmwrite(VMCS_HOST_RSP, (uint32_t)(uintptr_t)stm_frame - 16u);
    vmlaunch();
    stm_failed();
}

__attribute__((section(".mseg.text"), noreturn, used)) void stm_main(void)
{
    uint32_t reason = vmcs_field(VMCS_VM_EXIT_REASON);
    uint32_t basic = reason & 0xFFFFu;
    if (basic == VMXU_EXIT_VMCALL && vmcs_field(VMCS_HOST_RIP) != (uint32_t)(uintptr_t)stm_entry) {
        printf("stm: activated by the VMM's VMCALL (exit reason %08x); returning to it\n", reason);
        vmwrite(VMCS_HOST_RIP, (uint32_t)(uintptr_t)stm_entry);
        vmwrite(VMCS_HOST_RSP, (uint32_t)(uintptr_t)stm_stack_top);
        stm_skip_instruction();
        stm_launch_executive();
    }
    if (basic == VMXU_EXIT_VMCALL) {
        printf("stm: the VMM's VMCALL (exit reason %08x): deactivating\n", reason);
        vmcs_set_bits(VMCS_VM_ENTRY_CONTROLS, VMX_ENTRY_DEACT_DUAL_MONITOR);
        stm_skip_instruction();
        stm_resume_executive();
    }
    if (basic != VMXU_EXIT_IO_SMI) {
        printf("stm: unexpected exit %08x\n", reason);
        vmxu_exit(7);
    }
    uint32_t smbase = (uint32_t)rdmsr(IA32_SMBASE);
    printf("stm: I/O SMI (port %02x) from the guest at %08x; SMBASE %05x: the legacy handler runs in a VM\n",
           vmcs_field(VMCS_EXIT_QUALIFICATION) >> 16, vmcs_field(VMCS_GUEST_RIP), smbase);
    stm_run_legacy(smbase);
}

__attribute__((section(".mseg.text"), noreturn, used)) void stm_rsm(void)
{
    printf("stm: the legacy handler's RSM (exit %u); my MSEG header's revision reads %x; resuming the guest\n",
           vmcs_field(VMCS_VM_EXIT_REASON) & 0xFFFFu, *(volatile uint32_t *)(uintptr_t)MSEG);
    if (vmptrld(stm_transfer) != VMX_SUCCEED)
        stm_failed();
    stm_resume_executive();
}

/* -- the VMM and its guest --------------------------------------------------------------------------------- */

static __attribute__((noreturn)) void guest_main(void)
{
    printf("guest: hello\n");
    for (uint32_t request = 1; request <= 2; request++) {
        mailbox[0] = request;
        mailbox[1] = 0;
        printf("guest: SMI request %u (OUT to port b2)\n", request);
        outb(VMXU_PORT_SMI, (uint8_t)request);
        printf("guest: back from SMM; the answer is %u\n", mailbox[1]);
    }
    uint32_t handler = SMBASE_NEW + VMXU_SMM_ENTRY_OFFSET;
    printf("guest: SMRAM at %05x reads %08x from here\n", handler, *(volatile uint32_t *)(uintptr_t)handler);
    vmcall();
    for (;;)
        ;
}

static __attribute__((noreturn)) void vmm_exit(void)
{
    printf("vmm: the guest's exit %u\n", vmcs_field(VMCS_VM_EXIT_REASON) & 0xFFFFu);
    if (vmxoff() == VMX_SUCCEED) {
        printf("vmm: VMXOFF succeeded while the STM is active\n");
        vmxu_exit(8);
    }
    printf("vmm: VMXOFF while the STM is active: error %u\n", vm_instruction_error());
    vmcall();
    enum vmx_result result = vmxoff();
    printf("vmm: the STM is off; VMXOFF %s\n", result == VMX_SUCCEED ? "succeeded" : "failed");
    vmxu_exit(result == VMX_SUCCEED ? 0 : 9);
}

int main(void)
{
    printf("boot: vmxu STM demo; an SMI (OUT to port b2) to relocate SMBASE\n");
    outb(VMXU_PORT_SMI, 0);
    uint32_t handler = SMBASE_NEW + VMXU_SMM_ENTRY_OFFSET;
    printf("boot: back from SMM; SMRAM at %05x reads %08x outside SMM\n", handler,
           *(volatile uint32_t *)(uintptr_t)handler);
    if (vmm_start(vmxon_region, transfer_vmcs) != 0)
        return 1;
    printf("vmm: activating the dual-monitor treatment (VMCALL)\n");
    if (vmcall() != VMX_SUCCEED) {
        printf("vmm: VMCALL failed: error %u\n", vm_instruction_error());
        return 2;
    }
    printf("vmm: the STM is active; launching the guest\n");
    if (vmm_load_vmcs(guest_vmcs) != 0)
        return 3;
    vmm_set_guest(guest_main, &guest_stack[1024], vmxu_trap_entry);
    vmm_set_host(vmm_exit, &host_stack[1024]);
    enum vmx_result result = vmlaunch();
    printf("vmm: VMLAUNCH failed (%u): error %u\n", result, vm_instruction_error());
    return 4;
}
