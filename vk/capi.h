// capi.h: the small C part of package vk. vulkan-go wraps only Vulkan 1.0, so the
// loader, the instance, the Vulkan 1.1-1.3 feature/property queries and device
// creation with a feature chain live here; everything else goes through vulkan-go.
#ifndef EMU35_CAPI_H
#define EMU35_CAPI_H
#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>
#include <stdint.h>

typedef struct {
	uint32_t M, N, K, a, b, c, result, scope;
} EmuCoopMat;

typedef struct {
	char name[256];
	char driverName[256];
	char driverInfo[256];
	uint8_t uuid[16];
	uint32_t apiVersion, driverVersion, vendorID, deviceID, deviceType;
	uint32_t queueFamily, timestampValidBits;
	float timestampPeriod;

	uint32_t subgroupSize, minSubgroupSize, maxSubgroupSize, subgroupOps, subgroupStages;
	uint32_t subgroupSizeControl, computeFullSubgroups;

	uint32_t shaderFloat16, shaderInt8, shaderInt16, shaderInt64, shaderFloat64;
	uint32_t storage16, storage8, uniformStorage8, push8, push16, subgroupExtendedTypes;
	uint32_t integerDotProduct, dot4x8PackedSignedAccel, dot8BitSignedAccel;
	uint32_t memoryModel, memoryModelDeviceScope, bufferDeviceAddress, timelineSemaphore;
	uint32_t synchronization2, maintenance4, scalarBlockLayout;
	uint32_t coopmatNV, coopmatKHR, coopmat2NV, bfloat16, pushDescriptor, execProps, smBuiltins;
	uint32_t smCount, warpsPerSM; // VK_NV_shader_sm_builtins (0 without it)
	uint32_t nCoopMat;
	EmuCoopMat coopMat[32];

	uint64_t maxStorageBufferRange, maxMemoryAllocationSize, maxBufferSize;
	uint64_t minStorageBufferOffsetAlignment, nonCoherentAtomSize;
	uint32_t maxSharedMemory, maxInvocations, maxWGSize[3], maxWGCount[3], maxPushConstants;

	uint32_t nHeaps, nTypes;
	uint64_t heapSize[16];
	uint32_t heapFlags[16];
	uint32_t typeFlags[32], typeHeap[32];
} EmuCaps;

int emu_load(char *err, int errlen);
void *emu_gipa(void);
VkResult emu_create_instance(const char **exts, uint32_t nexts, int validation, VkInstance *out);
void emu_destroy_instance(VkInstance inst);
VkResult emu_enum_devices(VkInstance inst, uint32_t *n, VkPhysicalDevice *out);
void emu_query(VkInstance inst, VkPhysicalDevice pd, EmuCaps *c);
VkResult emu_create_device(VkInstance inst, VkPhysicalDevice pd, const EmuCaps *c, const char **exts, uint32_t nexts, int stats, VkDevice *out);

// One statistic of a compiled pipeline (VK_KHR_pipeline_executable_properties).
typedef struct {
	char name[VK_MAX_DESCRIPTION_SIZE];
	char description[VK_MAX_DESCRIPTION_SIZE];
	uint32_t format; // VkPipelineExecutableStatisticFormatKHR
	uint32_t b32;
	int64_t i64;
	uint64_t u64;
	double f64;
} EmuStat;
#endif

// Hot-path recording without vulkan-go's per-call struct conversions.
typedef struct {
	PFN_vkCmdBindPipeline bindPipeline;
	PFN_vkCmdBindDescriptorSets bindSets;
	PFN_vkCmdPushConstants push;
	PFN_vkCmdDispatch dispatch;
	PFN_vkCmdPipelineBarrier barrier;
	PFN_vkUpdateDescriptorSets updateSets;
	PFN_vkAllocateDescriptorSets allocSets;
	PFN_vkCmdCopyBuffer copy;
	PFN_vkCreateComputePipelines createCompute;
	PFN_vkGetPipelineExecutableStatisticsKHR stats; // NULL without VK_KHR_pipeline_executable_properties
} EmuDevFns;

EmuDevFns *emu_dev_fns(VkInstance inst, VkDevice dev);
VkResult emu_alloc_set(EmuDevFns *f, VkDevice dev, VkDescriptorPool pool, VkDescriptorSetLayout dsl, VkDescriptorSet *out);
void emu_write_set(EmuDevFns *f, VkDevice dev, VkDescriptorSet set, uint32_t n, const VkBuffer *bufs, const uint64_t *offs, const uint64_t *ranges);
void emu_dispatch(EmuDevFns *f, VkCommandBuffer cb, VkPipeline p, VkPipelineLayout l, VkDescriptorSet set, const void *push, uint32_t pushSize, uint32_t gx, uint32_t gy, uint32_t gz);
void emu_barrier(EmuDevFns *f, VkCommandBuffer cb);
VkResult emu_compute_pipeline(EmuDevFns *f, VkDevice dev, VkPipelineCache cache, VkShaderModule mod, VkPipelineLayout layout, const uint32_t *spec, uint32_t nspec, int stats, VkPipeline *out);
VkResult emu_pipeline_stats(EmuDevFns *f, VkDevice dev, VkPipeline p, EmuStat *out, uint32_t *n);
void emu_copy(EmuDevFns *f, VkCommandBuffer cb, VkBuffer src, VkBuffer dst, uint64_t so, uint64_t dso, uint64_t size);
