/* vmxu firmware: what every VMM demo does before its first VM entry (lib/vmm.c, docs/guests.md). */
#ifndef VMXU_VMM_H
#define VMXU_VMM_H

#include <stdint.h>

/* VMX on (IA32_FEATURE_CONTROL, the CR0/CR4 fixed bits), VMXON, VMCLEAR and VMPTRLD of vmcs, then the
 * launchable controls, host and guest state of include/vmxu_guest.h. 0 on success; otherwise prints
 * which step failed and returns nonzero. Both regions are VMXU_VMCS_REGION_BYTES, 4-KiB aligned. */
int vmm_start(uint8_t *vmxon_region, uint8_t *vmcs);

/* The guest's first instruction, its stack top and its trap vector (GUEST_RIP, GUEST_RSP,
 * GUEST_IDTR_BASE); the VMM's exit entry and stack (HOST_RIP, HOST_RSP; HOST_IDTR_BASE := mtvec). */
/* VMCLEAR and VMPTRLD of vmcs (its revision identifier written first), then the launchable state: what
 * vmm_start does after VMXON, for a VMM's (or an STM's) further VMCSs. 0 on success. */
int vmm_load_vmcs(uint8_t *vmcs);

void vmm_set_guest(void (*entry)(void), uint32_t *stack_top, void (*trap_vector)(void));
void vmm_set_host(void (*exit_entry)(void), uint32_t *stack_top);

/* A field of the current VMCS (0 when VMREAD fails); bits set or cleared in a control field. */
uint32_t vmcs_field(uint32_t encoding);
void vmcs_set_bits(uint32_t encoding, uint32_t bits);
void vmcs_clear_bits(uint32_t encoding, uint32_t bits);

/* Reads of the MSR exit through the bitmap (the read-low half, MSRs 0-0x1FFF). */
void vmm_msr_read_exits(uint8_t *msr_bitmap, uint32_t msr);

/* A VMX instruction in an asm string (an exit stub's), from include/vmxu_isa.h's encoding:
 * VMM_ASM_VMX(VMXU_INSN_VMREAD_FUNCT7) ", t1, t2, x0" is VMREAD of the field in t2 into t1. The
 * instructions of the extension with funct3 0 (every VMX instruction) only. */
#define VMM_STR_(x) #x
#define VMM_STR(x) VMM_STR_(x)
#define VMM_ASM_VMX(funct7) ".insn r " VMM_STR(VMXU_OPCODE_CUSTOM0) ", 0, " VMM_STR(funct7)

#endif /* VMXU_VMM_H */
