#include "capi.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PFN_vkGetInstanceProcAddr gipa;

int emu_load(char *err, int errlen) {
	if (gipa) return 0;
	const char *names[] = {"libvulkan.so.1", "libvulkan.so"};
	for (int i = 0; i < 2; i++) {
		void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (!h) continue;
		gipa = (PFN_vkGetInstanceProcAddr)dlsym(h, "vkGetInstanceProcAddr");
		if (gipa) return 0;
	}
	snprintf(err, errlen, "%s", dlerror() ? dlerror() : "libvulkan.so.1 not found");
	return -1;
}

void *emu_gipa(void) { return (void *)gipa; }

#define IPROC(inst, name) ((PFN_##name)gipa(inst, #name))

VkResult emu_create_instance(const char **exts, uint32_t nexts, int validation, VkInstance *out) {
	PFN_vkCreateInstance create = IPROC(NULL, vkCreateInstance);
	VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO};
	app.pApplicationName = "emu35";
	app.pEngineName = "emu35";
	app.apiVersion = VK_API_VERSION_1_3;
	const char *layers[] = {"VK_LAYER_KHRONOS_validation"};
	VkInstanceCreateInfo ci = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
	ci.pApplicationInfo = &app;
	ci.enabledExtensionCount = nexts;
	ci.ppEnabledExtensionNames = exts;
	if (validation) {
		ci.enabledLayerCount = 1;
		ci.ppEnabledLayerNames = layers;
	}
	return create(&ci, NULL, out);
}

void emu_destroy_instance(VkInstance inst) { IPROC(inst, vkDestroyInstance)(inst, NULL); }

VkResult emu_enum_devices(VkInstance inst, uint32_t *n, VkPhysicalDevice *out) {
	return IPROC(inst, vkEnumeratePhysicalDevices)(inst, n, out);
}

static int has_ext(VkExtensionProperties *e, uint32_t n, const char *name) {
	for (uint32_t i = 0; i < n; i++)
		if (!strcmp(e[i].extensionName, name)) return 1;
	return 0;
}

void emu_query(VkInstance inst, VkPhysicalDevice pd, EmuCaps *c) {
	memset(c, 0, sizeof *c);
	uint32_t next = 0;
	IPROC(inst, vkEnumerateDeviceExtensionProperties)(pd, NULL, &next, NULL);
	VkExtensionProperties *ext = calloc(next ? next : 1, sizeof *ext);
	IPROC(inst, vkEnumerateDeviceExtensionProperties)(pd, NULL, &next, ext);
	c->coopmatNV = has_ext(ext, next, "VK_NV_cooperative_matrix");
	c->coopmatKHR = has_ext(ext, next, "VK_KHR_cooperative_matrix");
	c->coopmat2NV = has_ext(ext, next, "VK_NV_cooperative_matrix2");
	c->bfloat16 = has_ext(ext, next, "VK_KHR_shader_bfloat16");
	c->pushDescriptor = has_ext(ext, next, "VK_KHR_push_descriptor");
	c->execProps = has_ext(ext, next, "VK_KHR_pipeline_executable_properties");
	c->smBuiltins = has_ext(ext, next, "VK_NV_shader_sm_builtins");
	free(ext);

	VkPhysicalDeviceProperties base;
	IPROC(inst, vkGetPhysicalDeviceProperties)(pd, &base);
	c->apiVersion = base.apiVersion;
	c->driverVersion = base.driverVersion;
	c->vendorID = base.vendorID;
	c->deviceID = base.deviceID;
	c->deviceType = base.deviceType;
	snprintf(c->name, sizeof c->name, "%s", base.deviceName);
	memcpy(c->uuid, base.pipelineCacheUUID, 16);
	VkPhysicalDeviceLimits *l = &base.limits;
	c->maxStorageBufferRange = l->maxStorageBufferRange;
	c->minStorageBufferOffsetAlignment = l->minStorageBufferOffsetAlignment;
	c->nonCoherentAtomSize = l->nonCoherentAtomSize;
	c->maxSharedMemory = l->maxComputeSharedMemorySize;
	c->maxInvocations = l->maxComputeWorkGroupInvocations;
	for (int i = 0; i < 3; i++) {
		c->maxWGSize[i] = l->maxComputeWorkGroupSize[i];
		c->maxWGCount[i] = l->maxComputeWorkGroupCount[i];
	}
	c->maxPushConstants = l->maxPushConstantsSize;
	c->timestampPeriod = l->timestampPeriod;
	if (VK_API_VERSION_MINOR(base.apiVersion) < 2 && VK_API_VERSION_MAJOR(base.apiVersion) == 1) return;

	PFN_vkGetPhysicalDeviceProperties2 props2 = IPROC(inst, vkGetPhysicalDeviceProperties2);
	PFN_vkGetPhysicalDeviceFeatures2 feats2 = IPROC(inst, vkGetPhysicalDeviceFeatures2);
	int v13 = VK_API_VERSION_MINOR(base.apiVersion) >= 3 || VK_API_VERSION_MAJOR(base.apiVersion) > 1;

	VkPhysicalDeviceVulkan11Properties p11 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES};
	VkPhysicalDeviceVulkan12Properties p12 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES};
	VkPhysicalDeviceVulkan13Properties p13 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_PROPERTIES};
	VkPhysicalDeviceMaintenance3Properties m3 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
	VkPhysicalDeviceProperties2 p2 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
	p2.pNext = &p11;
	p11.pNext = &p12;
	p12.pNext = &m3;
	if (v13) m3.pNext = &p13;
	VkPhysicalDeviceShaderSMBuiltinsPropertiesNV sm = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SM_BUILTINS_PROPERTIES_NV};
	if (c->smBuiltins) {
		sm.pNext = p2.pNext;
		p2.pNext = &sm;
	}
	props2(pd, &p2);
	c->smCount = sm.shaderSMCount;
	c->warpsPerSM = sm.shaderWarpsPerSM;
	c->subgroupSize = p11.subgroupSize;
	c->subgroupOps = p11.subgroupSupportedOperations;
	c->subgroupStages = p11.subgroupSupportedStages;
	c->maxMemoryAllocationSize = m3.maxMemoryAllocationSize;
	snprintf(c->driverName, sizeof c->driverName, "%s", p12.driverName);
	snprintf(c->driverInfo, sizeof c->driverInfo, "%s", p12.driverInfo);
	c->minSubgroupSize = c->maxSubgroupSize = c->subgroupSize;
	if (v13) {
		c->minSubgroupSize = p13.minSubgroupSize;
		c->maxSubgroupSize = p13.maxSubgroupSize;
		c->dot4x8PackedSignedAccel = p13.integerDotProduct4x8BitPackedSignedAccelerated;
		c->dot8BitSignedAccel = p13.integerDotProduct8BitSignedAccelerated;
	}

	VkPhysicalDeviceVulkan11Features f11 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
	VkPhysicalDeviceVulkan12Features f12 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
	VkPhysicalDeviceVulkan13Features f13 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
	VkPhysicalDeviceCooperativeMatrixFeaturesNV fcm = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
	VkPhysicalDeviceFeatures2 f2 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
	f2.pNext = &f11;
	f11.pNext = &f12;
	if (v13) f12.pNext = &f13;
	if (c->coopmatNV) {
		fcm.pNext = f2.pNext;
		f2.pNext = &fcm;
	}
	feats2(pd, &f2);
	c->shaderInt16 = f2.features.shaderInt16;
	c->shaderInt64 = f2.features.shaderInt64;
	c->shaderFloat64 = f2.features.shaderFloat64;
	c->storage16 = f11.storageBuffer16BitAccess;
	c->push16 = f11.storagePushConstant16;
	c->shaderFloat16 = f12.shaderFloat16;
	c->shaderInt8 = f12.shaderInt8;
	c->storage8 = f12.storageBuffer8BitAccess;
	c->uniformStorage8 = f12.uniformAndStorageBuffer8BitAccess;
	c->push8 = f12.storagePushConstant8;
	c->subgroupExtendedTypes = f12.shaderSubgroupExtendedTypes;
	c->memoryModel = f12.vulkanMemoryModel;
	c->memoryModelDeviceScope = f12.vulkanMemoryModelDeviceScope;
	c->bufferDeviceAddress = f12.bufferDeviceAddress;
	c->timelineSemaphore = f12.timelineSemaphore;
	c->scalarBlockLayout = f12.scalarBlockLayout;
	if (v13) {
		c->integerDotProduct = f13.shaderIntegerDotProduct;
		c->subgroupSizeControl = f13.subgroupSizeControl;
		c->computeFullSubgroups = f13.computeFullSubgroups;
		c->synchronization2 = f13.synchronization2;
		c->maintenance4 = f13.maintenance4;
		if (f13.maintenance4) c->maxBufferSize = p13.maxBufferSize;
	}
	if (c->coopmatNV && fcm.cooperativeMatrix) {
		PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV cmp = IPROC(inst, vkGetPhysicalDeviceCooperativeMatrixPropertiesNV);
		uint32_t n = 0;
		if (cmp && cmp(pd, &n, NULL) == VK_SUCCESS && n > 0) {
			VkCooperativeMatrixPropertiesNV *p = calloc(n, sizeof *p);
			for (uint32_t i = 0; i < n; i++) p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
			cmp(pd, &n, p);
			for (uint32_t i = 0; i < n && i < 32; i++) {
				c->coopMat[i] = (EmuCoopMat){p[i].MSize, p[i].NSize, p[i].KSize, p[i].AType, p[i].BType, p[i].CType, p[i].DType, p[i].scope};
			}
			c->nCoopMat = n < 32 ? n : 32;
			free(p);
		}
	} else {
		c->coopmatNV = 0;
	}

	VkPhysicalDeviceMemoryProperties mp;
	IPROC(inst, vkGetPhysicalDeviceMemoryProperties)(pd, &mp);
	c->nHeaps = mp.memoryHeapCount;
	c->nTypes = mp.memoryTypeCount;
	for (uint32_t i = 0; i < mp.memoryHeapCount && i < 16; i++) {
		c->heapSize[i] = mp.memoryHeaps[i].size;
		c->heapFlags[i] = mp.memoryHeaps[i].flags;
	}
	for (uint32_t i = 0; i < mp.memoryTypeCount && i < 32; i++) {
		c->typeFlags[i] = mp.memoryTypes[i].propertyFlags;
		c->typeHeap[i] = mp.memoryTypes[i].heapIndex;
	}

	uint32_t nq = 0;
	IPROC(inst, vkGetPhysicalDeviceQueueFamilyProperties)(pd, &nq, NULL);
	VkQueueFamilyProperties *q = calloc(nq ? nq : 1, sizeof *q);
	IPROC(inst, vkGetPhysicalDeviceQueueFamilyProperties)(pd, &nq, q);
	c->queueFamily = UINT32_MAX;
	// Prefer a family with graphics+compute (it also presents for the viewer).
	for (uint32_t i = 0; i < nq; i++)
		if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && (q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) {
			c->queueFamily = i;
			break;
		}
	if (c->queueFamily == UINT32_MAX)
		for (uint32_t i = 0; i < nq; i++)
			if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
				c->queueFamily = i;
				break;
			}
	if (c->queueFamily != UINT32_MAX) c->timestampValidBits = q[c->queueFamily].timestampValidBits;
	free(q);
}

VkResult emu_create_device(VkInstance inst, VkPhysicalDevice pd, const EmuCaps *c, const char **exts, uint32_t nexts, int stats, VkDevice *out) {
	float prio = 1.0f;
	VkDeviceQueueCreateInfo qi = {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
	qi.queueFamilyIndex = c->queueFamily;
	qi.queueCount = 1;
	qi.pQueuePriorities = &prio;

	VkPhysicalDeviceVulkan11Features f11 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
	VkPhysicalDeviceVulkan12Features f12 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
	VkPhysicalDeviceVulkan13Features f13 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
	VkPhysicalDeviceCooperativeMatrixFeaturesNV fcm = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
	VkPhysicalDeviceFeatures2 f2 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
	f2.pNext = &f11;
	f11.pNext = &f12;
	f12.pNext = &f13;
	f2.features.shaderInt16 = c->shaderInt16;
	f2.features.shaderInt64 = c->shaderInt64;
	f2.features.shaderFloat64 = c->shaderFloat64;
	f11.storageBuffer16BitAccess = c->storage16;
	f11.storagePushConstant16 = c->push16;
	f12.shaderFloat16 = c->shaderFloat16;
	f12.shaderInt8 = c->shaderInt8;
	f12.storageBuffer8BitAccess = c->storage8;
	f12.uniformAndStorageBuffer8BitAccess = c->uniformStorage8;
	f12.storagePushConstant8 = c->push8;
	f12.shaderSubgroupExtendedTypes = c->subgroupExtendedTypes;
	f12.vulkanMemoryModel = c->memoryModel;
	f12.vulkanMemoryModelDeviceScope = c->memoryModelDeviceScope;
	f12.timelineSemaphore = c->timelineSemaphore;
	f12.scalarBlockLayout = c->scalarBlockLayout;
	f13.shaderIntegerDotProduct = c->integerDotProduct;
	f13.subgroupSizeControl = c->subgroupSizeControl;
	f13.computeFullSubgroups = c->computeFullSubgroups;
	f13.synchronization2 = c->synchronization2;
	f13.maintenance4 = c->maintenance4;
	if (c->coopmatNV) {
		fcm.cooperativeMatrix = 1;
		f13.pNext = &fcm;
	}
	// Statistics of compiled pipelines (register counts) for `bench --stats`: the
	// caller adds the extension's name when it asks for them.
	VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR fexec = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
	if (stats) {
		fexec.pipelineExecutableInfo = 1;
		fexec.pNext = f2.pNext;
		f2.pNext = &fexec;
	}
	VkDeviceCreateInfo ci = {VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
	ci.pNext = &f2;
	ci.queueCreateInfoCount = 1;
	ci.pQueueCreateInfos = &qi;
	ci.enabledExtensionCount = nexts;
	ci.ppEnabledExtensionNames = exts;
	return IPROC(inst, vkCreateDevice)(pd, &ci, NULL, out);
}

EmuDevFns *emu_dev_fns(VkInstance inst, VkDevice dev) {
	PFN_vkGetDeviceProcAddr gdpa = IPROC(inst, vkGetDeviceProcAddr);
	EmuDevFns *f = calloc(1, sizeof *f);
#define DPROC(field, name) f->field = (PFN_##name)gdpa(dev, #name)
	DPROC(bindPipeline, vkCmdBindPipeline);
	DPROC(bindSets, vkCmdBindDescriptorSets);
	DPROC(push, vkCmdPushConstants);
	DPROC(dispatch, vkCmdDispatch);
	DPROC(barrier, vkCmdPipelineBarrier);
	DPROC(updateSets, vkUpdateDescriptorSets);
	DPROC(allocSets, vkAllocateDescriptorSets);
	DPROC(copy, vkCmdCopyBuffer);
	DPROC(createCompute, vkCreateComputePipelines);
	DPROC(stats, vkGetPipelineExecutableStatisticsKHR);
	return f;
}

VkResult emu_alloc_set(EmuDevFns *f, VkDevice dev, VkDescriptorPool pool, VkDescriptorSetLayout dsl, VkDescriptorSet *out) {
	VkDescriptorSetAllocateInfo ai = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
	ai.descriptorPool = pool;
	ai.descriptorSetCount = 1;
	ai.pSetLayouts = &dsl;
	return f->allocSets(dev, &ai, out);
}

void emu_write_set(EmuDevFns *f, VkDevice dev, VkDescriptorSet set, uint32_t n, const VkBuffer *bufs, const uint64_t *offs, const uint64_t *ranges) {
	VkDescriptorBufferInfo info[32];
	VkWriteDescriptorSet w[32];
	if (n > 32) n = 32;
	for (uint32_t i = 0; i < n; i++) {
		info[i] = (VkDescriptorBufferInfo){bufs[i], offs[i], ranges[i]};
		w[i] = (VkWriteDescriptorSet){VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
		w[i].dstSet = set;
		w[i].dstBinding = i;
		w[i].descriptorCount = 1;
		w[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
		w[i].pBufferInfo = &info[i];
	}
	f->updateSets(dev, n, w, 0, NULL);
}

void emu_dispatch(EmuDevFns *f, VkCommandBuffer cb, VkPipeline p, VkPipelineLayout l, VkDescriptorSet set, const void *push, uint32_t pushSize, uint32_t gx, uint32_t gy, uint32_t gz) {
	f->bindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, p);
	f->bindSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, l, 0, 1, &set, 0, NULL);
	if (pushSize) f->push(cb, l, VK_SHADER_STAGE_COMPUTE_BIT, 0, pushSize, push);
	f->dispatch(cb, gx, gy, gz);
}

void emu_barrier(EmuDevFns *f, VkCommandBuffer cb) {
	VkMemoryBarrier b = {VK_STRUCTURE_TYPE_MEMORY_BARRIER};
	b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
	b.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
	VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
	f->barrier(cb, st, st, 0, 1, &b, 0, NULL, 0, NULL);
}

void emu_copy(EmuDevFns *f, VkCommandBuffer cb, VkBuffer src, VkBuffer dst, uint64_t so, uint64_t dso, uint64_t size) {
	VkBufferCopy r = {so, dso, size};
	f->copy(cb, src, dst, 1, &r);
}

VkResult emu_compute_pipeline(EmuDevFns *f, VkDevice dev, VkPipelineCache cache, VkShaderModule mod, VkPipelineLayout layout, const uint32_t *spec, uint32_t nspec, int stats, VkPipeline *out) {
	VkSpecializationMapEntry entries[16];
	if (nspec > 16) nspec = 16;
	for (uint32_t i = 0; i < nspec; i++) entries[i] = (VkSpecializationMapEntry){i, 4 * i, 4};
	VkSpecializationInfo si = {nspec, entries, 4 * nspec, spec};
	VkComputePipelineCreateInfo ci = {VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
	ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
	ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
	ci.stage.module = mod;
	ci.stage.pName = "main";
	ci.stage.pSpecializationInfo = nspec ? &si : NULL;
	ci.layout = layout;
	if (stats) ci.flags = VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR;
	return f->createCompute(dev, cache, 1, &ci, NULL, out);
}

// emu_pipeline_stats reads the statistics of a compute pipeline's one executable
// into out (capacity *n; *n becomes the count written).
VkResult emu_pipeline_stats(EmuDevFns *f, VkDevice dev, VkPipeline p, EmuStat *out, uint32_t *n) {
	PFN_vkGetPipelineExecutableStatisticsKHR get = f->stats;
	if (!get) return VK_ERROR_EXTENSION_NOT_PRESENT;
	VkPipelineExecutableInfoKHR info = {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR};
	info.pipeline = p;
	info.executableIndex = 0;
	uint32_t count = 0;
	VkResult r = get(dev, &info, &count, NULL);
	if (r != VK_SUCCESS) return r;
	if (count > *n) count = *n;
	VkPipelineExecutableStatisticKHR *st = calloc(count ? count : 1, sizeof *st);
	for (uint32_t i = 0; i < count; i++) st[i].sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR;
	r = get(dev, &info, &count, st);
	if (r == VK_SUCCESS || r == VK_INCOMPLETE) {
		for (uint32_t i = 0; i < count; i++) {
			EmuStat *o = &out[i];
			memset(o, 0, sizeof *o);
			snprintf(o->name, sizeof o->name, "%s", st[i].name);
			snprintf(o->description, sizeof o->description, "%s", st[i].description);
			o->format = st[i].format;
			switch (st[i].format) {
			case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR: o->b32 = st[i].value.b32; break;
			case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: o->i64 = st[i].value.i64; break;
			case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: o->u64 = st[i].value.u64; break;
			default: o->f64 = st[i].value.f64; break;
			}
		}
		*n = count;
		r = VK_SUCCESS;
	}
	free(st);
	return r;
}
