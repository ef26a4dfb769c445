using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// The part of libwasmtime's component C API that the wasi:http host needs and the Wasmtime .NET binding does not
/// wrap: host-defined resources, host functions that take and return resource handles, and calls into a
/// component's exports with such handles. Signatures follow crates/c-api/include/wasmtime/component/*.h of
/// Wasmtime 50 (the library the Wasmtime package ships).
/// </summary>
internal static unsafe partial class ComponentApi
{
    private const string Lib = "wasmtime";

    // wasmtime_component_valkind_t
    public const byte KindBool = 0, KindU8 = 2, KindU16 = 4, KindU32 = 6, KindS64 = 7, KindU64 = 8, KindString = 12,
        KindList = 13, KindRecord = 14, KindTuple = 15, KindVariant = 16, KindEnum = 17, KindOption = 18,
        KindResult = 19, KindFlags = 20, KindResource = 21;

    [LibraryImport(Lib)] public static partial IntPtr wasm_config_new();
    [LibraryImport(Lib)] public static partial IntPtr wasm_engine_new_with_config(IntPtr config);
    [LibraryImport(Lib)] public static partial void wasm_engine_delete(IntPtr engine);
    [LibraryImport(Lib)] public static partial void wasmtime_config_max_wasm_stack_set(IntPtr config, nuint size);
    // wasmtime_opt_level_t: none 0, speed 1, speed_and_size 2 (the order of Wasmtime.OptimizationLevel).
    [LibraryImport(Lib)] public static partial void wasmtime_config_cranelift_opt_level_set(IntPtr config, byte level);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_pooling_allocation_config_new();
    [LibraryImport(Lib)] public static partial void wasmtime_pooling_allocation_config_delete(IntPtr pooling);
    [LibraryImport(Lib)] public static partial void wasmtime_pooling_allocation_strategy_set(IntPtr config, IntPtr pooling);
    [LibraryImport(Lib)] public static partial void wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(IntPtr pooling, nuint size);
    [LibraryImport(Lib)] public static partial void wasmtime_pooling_allocation_config_table_keep_resident_set(IntPtr pooling, nuint size);
    [LibraryImport(Lib)] public static partial void wasmtime_pooling_allocation_config_max_unused_warm_slots_set(IntPtr pooling, uint slots);
    [LibraryImport(Lib)] public static partial void wasmtime_config_memory_init_cow_set(IntPtr config, [MarshalAs(UnmanagedType.U1)] bool enable);
    [LibraryImport(Lib)] public static partial void wasmtime_config_epoch_interruption_set(IntPtr config, [MarshalAs(UnmanagedType.U1)] bool enable);
    [LibraryImport(Lib)] public static partial void wasmtime_engine_increment_epoch(IntPtr engine);
    [LibraryImport(Lib)] public static partial void wasm_byte_vec_new(ByteVec* vec, nuint size, byte* data);
    [LibraryImport(Lib)] public static partial void wasm_byte_vec_delete(ByteVec* vec);

    [LibraryImport(Lib)] public static partial IntPtr wasmtime_error_new([MarshalAs(UnmanagedType.LPUTF8Str)] string message);
    [LibraryImport(Lib)] public static partial void wasmtime_error_message(IntPtr error, ByteVec* message);
    [LibraryImport(Lib)] public static partial void wasmtime_error_delete(IntPtr error);

    [LibraryImport(Lib)] public static partial IntPtr wasmtime_store_new(IntPtr engine, IntPtr data, IntPtr finalizer);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_store_context(IntPtr store);
    [LibraryImport(Lib)] public static partial void wasmtime_store_delete(IntPtr store);
    // Negative values leave a limit at Wasmtime's default.
    [LibraryImport(Lib)] public static partial void wasmtime_store_limiter(IntPtr store, long memorySize, long tableElements, long instances, long tables, long memories);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_context_get_data(IntPtr context);
    [LibraryImport(Lib)] public static partial void wasmtime_context_set_epoch_deadline(IntPtr context, ulong ticksBeyondCurrent);
    // The callback's last parameter is a wasmtime_update_deadline_kind_t (uint8_t); left as is, it means continue.
    [LibraryImport(Lib)]
    public static partial void wasmtime_store_epoch_deadline_callback(IntPtr store,
        delegate* unmanaged<IntPtr, IntPtr, ulong*, byte*, IntPtr> func, IntPtr data, IntPtr finalizer);

    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_new(IntPtr engine, byte* buf, nuint len, out IntPtr component);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_serialize(IntPtr component, ByteVec* ret);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_deserialize(IntPtr engine, byte* buf, nuint len, out IntPtr component);
    [LibraryImport(Lib)]
    public static partial IntPtr wasmtime_component_deserialize_file(IntPtr engine, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, out IntPtr component);
    [LibraryImport(Lib)] public static partial void wasmtime_component_delete(IntPtr component);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_get_export_index(IntPtr component, IntPtr instanceIndex, byte* name, nuint len);
    [LibraryImport(Lib)] public static partial void wasmtime_component_export_index_delete(IntPtr index);

    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_type(IntPtr component);
    [LibraryImport(Lib)] public static partial void wasmtime_component_type_delete(IntPtr type);
    [LibraryImport(Lib)] public static partial nuint wasmtime_component_type_import_count(IntPtr type, IntPtr engine);
    [LibraryImport(Lib)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool wasmtime_component_type_import_nth(IntPtr type, IntPtr engine, nuint nth, out byte* name, out nuint nameLength, byte* item);
    [LibraryImport(Lib)] public static partial void wasmtime_component_item_delete(byte* item);

    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_linker_new(IntPtr engine);
    [LibraryImport(Lib)] public static partial void wasmtime_component_linker_delete(IntPtr linker);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_linker_root(IntPtr linker);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_linker_define_unknown_imports_as_traps(IntPtr linker, IntPtr component);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_linker_instantiate(IntPtr linker, IntPtr context, IntPtr component, out ComponentInstance instance);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_linker_instance_add_instance(IntPtr li, byte* name, nuint len, out IntPtr child);
    [LibraryImport(Lib)] public static partial void wasmtime_component_linker_instance_delete(IntPtr li);
    [LibraryImport(Lib)]
    public static partial IntPtr wasmtime_component_linker_instance_add_func(IntPtr li, byte* name, nuint len,
        delegate* unmanaged<IntPtr, IntPtr, IntPtr, Val*, nuint, Val*, nuint, IntPtr> callback, IntPtr data, IntPtr finalizer);
    [LibraryImport(Lib)]
    public static partial IntPtr wasmtime_component_linker_instance_add_resource(IntPtr li, byte* name, nuint len, IntPtr resourceType,
        delegate* unmanaged<IntPtr, IntPtr, uint, IntPtr> destructor, IntPtr data, IntPtr finalizer);

    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_resource_type_new_host(uint ty);
    [LibraryImport(Lib)] public static partial void wasmtime_component_resource_type_delete(IntPtr ty);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_resource_host_new([MarshalAs(UnmanagedType.U1)] bool owned, uint rep, uint ty);
    [LibraryImport(Lib)] public static partial uint wasmtime_component_resource_host_rep(IntPtr host);
    [LibraryImport(Lib)] public static partial uint wasmtime_component_resource_host_type(IntPtr host);
    [LibraryImport(Lib)] public static partial void wasmtime_component_resource_host_delete(IntPtr host);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_resource_any_to_host(IntPtr context, IntPtr any, out IntPtr host);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_resource_host_to_any(IntPtr context, IntPtr host, out IntPtr any);
    [LibraryImport(Lib)] public static partial void wasmtime_component_resource_any_delete(IntPtr any);

    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_instance_get_export_index(ComponentInstance* instance, IntPtr context, IntPtr instanceIndex, byte* name, nuint len);
    [LibraryImport(Lib)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool wasmtime_component_instance_get_func(ComponentInstance* instance, IntPtr context, IntPtr index, out ComponentFunc func);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_func_call(ComponentFunc* func, IntPtr context, Val* args, nuint nargs, Val* results, nuint nresults);
    [LibraryImport(Lib)] public static partial IntPtr wasmtime_component_func_post_return(ComponentFunc* func, IntPtr context);
    [LibraryImport(Lib)] public static partial void wasmtime_component_val_delete(Val* val);
    [LibraryImport(Lib)] public static partial Val* wasmtime_component_val_new(Val* val);
    [LibraryImport(Lib)] public static partial void wasmtime_component_vallist_new(ByteVec* vec, nuint size, Val* data);
    [LibraryImport(Lib)] public static partial void wasmtime_component_valrecord_new(ByteVec* vec, nuint size, RecordEntry* data);

    /// <summary>wasm_byte_vec_t, wasm_name_t and every other vector of the C API: a length and a pointer.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ByteVec
    {
        public nuint Size;
        public IntPtr Data;
    }

    /// <summary>wasmtime_component_instance_t.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ComponentInstance
    {
        public ulong StoreId;
        public uint Private;
    }

    /// <summary>wasmtime_component_func_t.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ComponentFunc
    {
        public ulong StoreId;
        public uint Private1;
        public uint Private2;
    }

    /// <summary>
    /// wasmtime_component_val_t: a kind byte and, 8 bytes in, a union whose largest member (a variant: name and
    /// payload pointer) takes 24 bytes.
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 32)]
    public struct Val
    {
        [FieldOffset(0)] public byte Kind;
        [FieldOffset(8)] public ulong A;
        [FieldOffset(16)] public ulong B;
        [FieldOffset(24)] public ulong C;
    }

    /// <summary>wasmtime_component_valrecord_entry_t: a name and a value.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct RecordEntry
    {
        public ByteVec Name;
        public Val Value;
    }

    /// <summary>Turns a returned error into an exception (and frees the error).</summary>
    public static void Check(IntPtr error, string what)
    {
        if (error != IntPtr.Zero)
        {
            throw new InvalidOperationException($"{what}: {TakeMessage(error)}");
        }
    }

    public static string TakeMessage(IntPtr error)
    {
        ByteVec message;
        wasmtime_error_message(error, &message);
        var text = Encoding.UTF8.GetString((byte*)message.Data, (int)message.Size);
        wasm_byte_vec_delete(&message);
        wasmtime_error_delete(error);
        return text;
    }

    // Values this host hands to Wasmtime are allocated by Wasmtime's own constructors, because Wasmtime frees
    // them (host function results) with its allocator.

    public static Val Bool(bool value) => new() { Kind = KindBool, A = value ? 1UL : 0UL };
    public static Val U16(ushort value) => new() { Kind = KindU16, A = value };
    public static Val U32(uint value) => new() { Kind = KindU32, A = value };
    public static Val U64(ulong value) => new() { Kind = KindU64, A = value };

    public static Val String(string value)
    {
        var v = new Val { Kind = KindString };
        var vec = NewName(value);
        v.A = vec.Size;
        v.B = (ulong)vec.Data;
        return v;
    }

    public static ByteVec NewName(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        return NewBytes(bytes);
    }

    public static ByteVec NewBytes(ReadOnlySpan<byte> bytes)
    {
        ByteVec vec;
        fixed (byte* p = bytes)
        {
            wasm_byte_vec_new(&vec, (nuint)bytes.Length, p);
        }
        return vec;
    }

    /// <summary>A list of u8 values: the component C API has no byte-list shortcut, one value per byte.</summary>
    public static Val ByteList(ReadOnlySpan<byte> bytes)
    {
        var items = new Val[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            items[i] = new Val { Kind = KindU8, A = bytes[i] };
        }
        return List(items);
    }

    public static Val List(Val[] items)
    {
        ByteVec vec;
        fixed (Val* p = items)
        {
            wasmtime_component_vallist_new(&vec, (nuint)items.Length, p);
        }
        return new Val { Kind = KindList, A = vec.Size, B = (ulong)vec.Data };
    }

    public static Val Tuple(Val[] items)
    {
        var list = List(items);
        list.Kind = KindTuple;
        return list;
    }

    public static Val Record(params (string Name, Val Value)[] fields)
    {
        var entries = new RecordEntry[fields.Length];
        for (var i = 0; i < fields.Length; i++)
        {
            entries[i] = new RecordEntry { Name = NewName(fields[i].Name), Value = fields[i].Value };
        }
        ByteVec vec;
        fixed (RecordEntry* p = entries)
        {
            wasmtime_component_valrecord_new(&vec, (nuint)entries.Length, p);
        }
        return new Val { Kind = KindRecord, A = vec.Size, B = (ulong)vec.Data };
    }

    public static Val* Box(Val value) => wasmtime_component_val_new(&value);

    public static Val Variant(string name, Val? payload = null)
    {
        var vec = NewName(name);
        return new Val { Kind = KindVariant, A = vec.Size, B = (ulong)vec.Data, C = payload is { } p ? (ulong)Box(p) : 0 };
    }

    public static Val Enum(string name)
    {
        var vec = NewName(name);
        return new Val { Kind = KindEnum, A = vec.Size, B = (ulong)vec.Data };
    }

    public static Val Option(Val? value) => new() { Kind = KindOption, A = value is { } v ? (ulong)Box(v) : 0 };

    public static Val Ok(Val? value = null) => new() { Kind = KindResult, A = 1, B = value is { } v ? (ulong)Box(v) : 0 };

    public static Val Err(Val? value = null) => new() { Kind = KindResult, A = 0, B = value is { } v ? (ulong)Box(v) : 0 };

    /// <summary>A handle to a host resource, owned (the guest must drop it) or borrowed.</summary>
    public static Val Resource(IntPtr context, uint type, uint rep, bool owned = true)
    {
        var host = wasmtime_component_resource_host_new(owned, rep, type);
        try
        {
            Check(wasmtime_component_resource_host_to_any(context, host, out var any), "resource");
            return new Val { Kind = KindResource, A = (ulong)any };
        }
        finally
        {
            wasmtime_component_resource_host_delete(host);
        }
    }

    // Reading the arguments Wasmtime passes to a host function (Wasmtime owns and frees them).

    public static string ReadString(in Val v) => Encoding.UTF8.GetString((byte*)v.B, (int)v.A);

    public static ReadOnlySpan<Val> ReadList(in Val v) => new((void*)v.B, (int)v.A);

    public static byte[] ReadBytes(in Val v)
    {
        var items = ReadList(v);
        var bytes = new byte[items.Length];
        for (var i = 0; i < items.Length; i++)
        {
            bytes[i] = (byte)items[i].A;
        }
        return bytes;
    }

    /// <summary>The case of a variant or enum value.</summary>
    public static string CaseName(in Val v) => Encoding.UTF8.GetString((byte*)v.B, (int)v.A);

    public static Val* Payload(in Val v) => (Val*)v.C;

    /// <summary>The option's value, or null for none.</summary>
    public static Val* OptionValue(in Val v) => (Val*)v.A;

    public static bool ResultIsOk(in Val v) => (v.A & 0xff) != 0;

    public static Val* ResultValue(in Val v) => (Val*)v.B;

    public static uint ReadRep(IntPtr context, in Val v)
    {
        Check(wasmtime_component_resource_any_to_host(context, (IntPtr)v.A, out var host), "resource handle");
        try
        {
            return wasmtime_component_resource_host_rep(host);
        }
        finally
        {
            wasmtime_component_resource_host_delete(host);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ReadOnlySpan<byte> Utf8(string s) => Encoding.UTF8.GetBytes(s);
}
