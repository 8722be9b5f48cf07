/* vmxu firmware: a VMM's set-up before its first VM entry (include/vmm.h). */
#define VMXU_LAUNCHABLE_TABLE
#include "vmm.h"

#include "console.h"
#include "vmxu.h"
#include "vmxu_guest.h"

int vmm_start(uint8_t *vmxon_region, uint8_t *vmcs)
{
    wrmsr(IA32_FEATURE_CONTROL, FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
    write_cr0(read_cr0() | CR0_FIXED0);
    write_cr4(read_cr4() | CR4_FIXED0);
    *(volatile uint32_t *)vmxon_region = VMXU_VMCS_REVISION_ID;
    if (vmxon((uint32_t)(uintptr_t)vmxon_region) != VMX_SUCCEED) {
        printf("vmm: VMXON failed\n");
        return 1;
    }
    return vmm_load_vmcs(vmcs);
}

int vmm_load_vmcs(uint8_t *vmcs)
{
    *(volatile uint32_t *)vmcs = VMXU_VMCS_REVISION_ID;
    if (vmclear((uint32_t)(uintptr_t)vmcs) != VMX_SUCCEED || vmptrld((uint32_t)(uintptr_t)vmcs) != VMX_SUCCEED) {
        printf("vmm: VMCLEAR/VMPTRLD failed: error %u\n", vm_instruction_error());
        return 2;
    }
    for (uint32_t i = 0; i < sizeof vmxu_launchable / sizeof vmxu_launchable[0]; i++) {
        vmwrite(vmxu_launchable[i].encoding, vmxu_launchable[i].low);
        if (vmxu_launchable[i].high)
            vmwrite(vmxu_launchable[i].encoding | 1u, vmxu_launchable[i].high);
    }
    return 0;
}

void vmm_set_guest(void (*entry)(void), uint32_t *stack_top, void (*trap_vector)(void))
{
    vmwrite(VMCS_GUEST_RIP, (uint32_t)(uintptr_t)entry);
    vmwrite(VMCS_GUEST_RSP, (uint32_t)(uintptr_t)stack_top);
    vmwrite(VMCS_GUEST_IDTR_BASE, (uint32_t)(uintptr_t)trap_vector);
}

void vmm_set_host(void (*exit_entry)(void), uint32_t *stack_top)
{
    vmwrite(VMCS_HOST_RIP, (uint32_t)(uintptr_t)exit_entry);
    vmwrite(VMCS_HOST_RSP, (uint32_t)(uintptr_t)stack_top);
    vmwrite(VMCS_HOST_IDTR_BASE, csr_read(VMXU_CSR_MTVEC));
}

uint32_t vmcs_field(uint32_t encoding)
{
    uint32_t value = 0;
    vmread(encoding, &value);
    return value;
}

void vmcs_set_bits(uint32_t encoding, uint32_t bits) { vmwrite(encoding, vmcs_field(encoding) | bits); }

void vmcs_clear_bits(uint32_t encoding, uint32_t bits) { vmwrite(encoding, vmcs_field(encoding) & ~bits); }

void vmm_msr_read_exits(uint8_t *msr_bitmap, uint32_t msr) { msr_bitmap[msr / 8] |= (uint8_t)(1u << (msr % 8)); }
