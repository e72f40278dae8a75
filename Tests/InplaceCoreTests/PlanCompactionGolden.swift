/// Printed by the planner before compaction (commit 9abe84a) for PlanCompactionTests.fixture().
enum PlanCompactionGolden {
    static let plan = #"""
{
  "disks" : [
    {
      "disk" : "default",
      "enough" : true,
      "free" : 1125899906842624,
      "freed_by_drops" : 0,
      "margin" : 268435456,
      "needed" : 500
    },
    {
      "disk" : "fast",
      "enough" : true,
      "free" : 1125899906842624,
      "freed_by_drops" : 0,
      "margin" : 268435456,
      "needed" : 200
    }
  ],
  "tables" : [
    {
      "create" : false,
      "createDatabase" : false,
      "database" : "db",
      "download" : [
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "crc64:11",
          "name" : "all_3_3_0",
          "partition" : "all"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "name" : "all_4_4_0",
          "partition" : "all"
        }
      ],
      "drop" : [
        {
          "bytes" : 100,
          "disk" : "default",
          "name" : "all_8_8_0",
          "partition" : "all"
        }
      ],
      "firstStep" : 0,
      "identity" : "checksums",
      "keep" : [
        {
          "backup" : "all_1_1_0",
          "bytes" : 100,
          "live" : "all_6_6_0"
        },
        {
          "backup" : "all_2_2_0",
          "bytes" : 100,
          "live" : "all_9_9_0"
        }
      ],
      "killMutations" : [

      ],
      "partitionsDropped" : [

      ],
      "recreate" : false,
      "resequence" : [
        {
          "backup" : "all_5_5_0",
          "bytes" : 100,
          "disk" : "fast",
          "identity" : "crc64:33",
          "live" : "all_7_7_0",
          "partition" : "all"
        }
      ],
      "table" : "crc"
    },
    {
      "create" : false,
      "createDatabase" : false,
      "database" : "db",
      "download" : [
        {
          "bytes" : 100,
          "disk" : "fast",
          "identity" : "00000000000000000000000000000001",
          "name" : "2024-01_5_9_2_17",
          "partition" : "2024-01"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "0123456789abcdef0123456789abcdef",
          "name" : "a_b_2_2_0",
          "partition" : "a_b"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "abc",
          "name" : "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_2_2_0",
          "partition" : "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718"
        }
      ],
      "drift" : {
        "added" : [
          "2024-01_2_2_0",
          "202401_01_1_0",
          "202401_100000000000_100000000000_0",
          "202401_21_21_0",
          "202402_3_3_0",
          "202402_4_4_0",
          "202403_1_1_0",
          "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_5_5_0",
          "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_6_6_0"
        ],
        "gone" : [
          "weird"
        ]
      },
      "drop" : [
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "0123456789abcdef0123456789abcdef",
          "name" : "2024-01_2_2_0",
          "partition" : "2024-01"
        },
        {
          "bytes" : 100,
          "disk" : "fast",
          "identity" : "0123456789abcdef0123456789abcdef",
          "name" : "202403_1_1_0",
          "partition" : "202403"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "ABC",
          "name" : "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_6_6_0",
          "partition" : "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718"
        }
      ],
      "firstStep" : 0,
      "identity" : "hash_of_all_files",
      "keep" : [
        {
          "backup" : "2024-01_4_4_0",
          "bytes" : 100,
          "live" : "2024-01_1_1_0"
        },
        {
          "backup" : "202401_01_1_0",
          "bytes" : 100,
          "live" : "202401_01_1_0"
        },
        {
          "backup" : "202401_2_99999999999_3",
          "bytes" : 1099511627776,
          "live" : "202401_100000000000_100000000000_0"
        },
        {
          "backup" : "202402_1_1_0",
          "bytes" : 100,
          "live" : "202402_4_4_0"
        },
        {
          "backup" : "a_b_1_1_0",
          "bytes" : 100,
          "live" : "a_b_7_7_0"
        },
        {
          "backup" : "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_1_1_0",
          "bytes" : 100,
          "live" : "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_5_5_0"
        }
      ],
      "killMutations" : [

      ],
      "partitionsDropped" : [
        "202403"
      ],
      "recreate" : false,
      "resequence" : [
        {
          "backup" : "202401_20_20_0_3",
          "bytes" : 100,
          "disk" : "default",
          "identity" : "0123456789abcdef0123456789abcdef",
          "live" : "202401_21_21_0",
          "partition" : "202401"
        },
        {
          "backup" : "202402_2_2_0",
          "bytes" : 100,
          "disk" : "default",
          "identity" : "00000000000000000000000000000001",
          "live" : "202402_3_3_0",
          "partition" : "202402"
        },
        {
          "backup" : "a_b_3_3_1",
          "bytes" : 7,
          "disk" : "fast",
          "identity" : "fedcba9876543210fedcba9876543210",
          "live" : "a_b_8_8_0",
          "partition" : "a_b"
        }
      ],
      "table" : "hashed"
    },
    {
      "create" : false,
      "createDatabase" : false,
      "database" : "db",
      "download" : [

      ],
      "drop" : [

      ],
      "firstStep" : 0,
      "identity" : "hash_of_all_files",
      "keep" : [

      ],
      "killMutations" : [

      ],
      "partitionsDropped" : [

      ],
      "recreate" : false,
      "refused" : "the backup lists part 'bad/name', which is not a valid part name",
      "resequence" : [

      ],
      "table" : "invalid"
    },
    {
      "create" : false,
      "createDatabase" : false,
      "database" : "db",
      "download" : [

      ],
      "drop" : [

      ],
      "firstStep" : 0,
      "identity" : "hash_of_all_files",
      "keep" : [

      ],
      "killMutations" : [

      ],
      "partitionsDropped" : [

      ],
      "recreate" : false,
      "refused" : "the backup's data for 1 part(s) to restore is missing (all_1_1_0); nothing will be dropped from this table",
      "resequence" : [

      ],
      "table" : "missing"
    },
    {
      "create" : true,
      "createDatabase" : true,
      "database" : "new",
      "download" : [
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "0123456789abcdef0123456789abcdef",
          "name" : "all_1_1_0",
          "partition" : "all"
        },
        {
          "bytes" : 100,
          "disk" : "fast",
          "identity" : "fedcba9876543210fedcba9876543210",
          "name" : "all_2_2_0",
          "partition" : "all"
        }
      ],
      "drop" : [

      ],
      "firstStep" : 0,
      "identity" : "hash_of_all_files",
      "keep" : [

      ],
      "killMutations" : [

      ],
      "partitionsDropped" : [

      ],
      "recreate" : false,
      "resequence" : [

      ],
      "table" : "created"
    }
  ]
}
"""#
    static let report = #"""
{
  "backup" : "b",
  "complete" : false,
  "disks" : [
    {
      "disk" : "default",
      "enough" : true,
      "free" : 1125899906842624,
      "freed_by_drops" : 0,
      "margin" : 268435456,
      "needed" : 500
    },
    {
      "disk" : "fast",
      "enough" : true,
      "free" : 1125899906842624,
      "freed_by_drops" : 0,
      "margin" : 268435456,
      "needed" : 200
    }
  ],
  "source" : "local",
  "tables" : [
    {
      "create" : false,
      "create_database" : false,
      "database" : "db",
      "download" : [
        "all_3_3_0",
        "all_4_4_0"
      ],
      "download_bytes" : 200,
      "drop" : [
        "all_8_8_0"
      ],
      "drop_bytes" : 100,
      "identity" : "checksums",
      "keep" : [
        {
          "backup" : "all_1_1_0",
          "bytes" : 100,
          "live" : "all_6_6_0"
        },
        {
          "backup" : "all_2_2_0",
          "bytes" : 100,
          "live" : "all_9_9_0"
        }
      ],
      "kill_mutations" : [

      ],
      "partitions_dropped" : [

      ],
      "recreate" : false,
      "resequence" : [
        {
          "backup" : "all_5_5_0",
          "bytes" : 100,
          "live" : "all_7_7_0"
        }
      ],
      "table" : "crc"
    },
    {
      "create" : false,
      "create_database" : false,
      "database" : "db",
      "download" : [
        "2024-01_5_9_2_17",
        "a_b_2_2_0",
        "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_2_2_0"
      ],
      "download_bytes" : 300,
      "drift" : {
        "added" : [
          "2024-01_2_2_0",
          "202401_01_1_0",
          "202401_100000000000_100000000000_0",
          "202401_21_21_0",
          "202402_3_3_0",
          "202402_4_4_0",
          "202403_1_1_0",
          "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_5_5_0",
          "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_6_6_0"
        ],
        "gone" : [
          "weird"
        ]
      },
      "drop" : [
        "2024-01_2_2_0",
        "202403_1_1_0",
        "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_6_6_0"
      ],
      "drop_bytes" : 300,
      "identity" : "hash_of_all_files",
      "keep" : [
        {
          "backup" : "2024-01_4_4_0",
          "bytes" : 100,
          "live" : "2024-01_1_1_0"
        },
        {
          "backup" : "202401_01_1_0",
          "bytes" : 100,
          "live" : "202401_01_1_0"
        },
        {
          "backup" : "202401_2_99999999999_3",
          "bytes" : 1099511627776,
          "live" : "202401_100000000000_100000000000_0"
        },
        {
          "backup" : "202402_1_1_0",
          "bytes" : 100,
          "live" : "202402_4_4_0"
        },
        {
          "backup" : "a_b_1_1_0",
          "bytes" : 100,
          "live" : "a_b_7_7_0"
        },
        {
          "backup" : "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_1_1_0",
          "bytes" : 100,
          "live" : "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_5_5_0"
        }
      ],
      "kill_mutations" : [

      ],
      "partitions_dropped" : [
        "202403"
      ],
      "recreate" : false,
      "resequence" : [
        {
          "backup" : "202401_20_20_0_3",
          "bytes" : 100,
          "live" : "202401_21_21_0"
        },
        {
          "backup" : "202402_2_2_0",
          "bytes" : 100,
          "live" : "202402_3_3_0"
        },
        {
          "backup" : "a_b_3_3_1",
          "bytes" : 7,
          "live" : "a_b_8_8_0"
        }
      ],
      "table" : "hashed"
    },
    {
      "create" : false,
      "create_database" : false,
      "database" : "db",
      "download" : [

      ],
      "download_bytes" : 0,
      "drop" : [

      ],
      "drop_bytes" : 0,
      "identity" : "hash_of_all_files",
      "keep" : [

      ],
      "kill_mutations" : [

      ],
      "partitions_dropped" : [

      ],
      "recreate" : false,
      "refused" : "the backup lists part 'bad/name', which is not a valid part name",
      "resequence" : [

      ],
      "table" : "invalid"
    },
    {
      "create" : false,
      "create_database" : false,
      "database" : "db",
      "download" : [

      ],
      "download_bytes" : 0,
      "drop" : [

      ],
      "drop_bytes" : 0,
      "identity" : "hash_of_all_files",
      "keep" : [

      ],
      "kill_mutations" : [

      ],
      "partitions_dropped" : [

      ],
      "recreate" : false,
      "refused" : "the backup's data for 1 part(s) to restore is missing (all_1_1_0); nothing will be dropped from this table",
      "resequence" : [

      ],
      "table" : "missing"
    },
    {
      "create" : true,
      "create_database" : true,
      "database" : "new",
      "download" : [
        "all_1_1_0",
        "all_2_2_0"
      ],
      "download_bytes" : 200,
      "drop" : [

      ],
      "drop_bytes" : 0,
      "identity" : "hash_of_all_files",
      "keep" : [

      ],
      "kill_mutations" : [

      ],
      "partitions_dropped" : [

      ],
      "recreate" : false,
      "resequence" : [

      ],
      "table" : "created"
    }
  ],
  "three_way" : true,
  "totals" : {
    "create" : 1,
    "download" : 7,
    "download_bytes" : 700,
    "drop" : 4,
    "drop_bytes" : 400,
    "keep" : 8,
    "refused" : 2,
    "resequence" : 4,
    "tables" : 5,
    "touched" : 3,
    "unchanged" : 0
  }
}
"""#
    static let fullDropFirst = #"""
{
  "disks" : [
    {
      "disk" : "default",
      "enough" : true,
      "free" : 1125899906842624,
      "freed_by_drops" : 1300,
      "margin" : 54975581458,
      "needed" : 1099511629176
    },
    {
      "disk" : "fast",
      "enough" : true,
      "free" : 1125899906842624,
      "freed_by_drops" : 300,
      "margin" : 268435456,
      "needed" : 307
    }
  ],
  "tables" : [
    {
      "create" : false,
      "createDatabase" : false,
      "database" : "db",
      "download" : [
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "crc64:11",
          "name" : "all_1_1_0",
          "partition" : "all"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "crc64:22",
          "name" : "all_2_2_0",
          "partition" : "all"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "crc64:11",
          "name" : "all_3_3_0",
          "partition" : "all"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "name" : "all_4_4_0",
          "partition" : "all"
        },
        {
          "bytes" : 100,
          "disk" : "fast",
          "identity" : "crc64:33",
          "name" : "all_5_5_0",
          "partition" : "all"
        }
      ],
      "drop" : [

      ],
      "firstStep" : 0,
      "identity" : "checksums",
      "keep" : [

      ],
      "killMutations" : [

      ],
      "partitionsDropped" : [

      ],
      "recreate" : true,
      "resequence" : [

      ],
      "table" : "crc"
    },
    {
      "create" : false,
      "createDatabase" : false,
      "database" : "db",
      "download" : [
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "0123456789abcdef0123456789abcdef",
          "name" : "2024-01_4_4_0",
          "partition" : "2024-01"
        },
        {
          "bytes" : 100,
          "disk" : "fast",
          "identity" : "00000000000000000000000000000001",
          "name" : "2024-01_5_9_2_17",
          "partition" : "2024-01"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "fedcba9876543210fedcba9876543210",
          "name" : "202401_01_1_0",
          "partition" : "202401"
        },
        {
          "bytes" : 1099511627776,
          "disk" : "default",
          "identity" : "00000000000000000000000000000001",
          "name" : "202401_2_99999999999_3",
          "partition" : "202401"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "0123456789abcdef0123456789abcdef",
          "name" : "202401_20_20_0_3",
          "partition" : "202401"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "fedcba9876543210fedcba9876543210",
          "name" : "202402_1_1_0",
          "partition" : "202402"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "00000000000000000000000000000001",
          "name" : "202402_2_2_0",
          "partition" : "202402"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "0123456789abcdef0123456789abcdef",
          "name" : "a_b_1_1_0",
          "partition" : "a_b"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "0123456789abcdef0123456789abcdef",
          "name" : "a_b_2_2_0",
          "partition" : "a_b"
        },
        {
          "bytes" : 7,
          "disk" : "fast",
          "identity" : "fedcba9876543210fedcba9876543210",
          "name" : "a_b_3_3_1",
          "partition" : "a_b"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "0123456789ABCDEF0123456789ABCDEF",
          "name" : "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_1_1_0",
          "partition" : "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718"
        },
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "abc",
          "name" : "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_2_2_0",
          "partition" : "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718"
        }
      ],
      "drift" : {
        "added" : [
          "2024-01_2_2_0",
          "202401_01_1_0",
          "202401_100000000000_100000000000_0",
          "202401_21_21_0",
          "202402_3_3_0",
          "202402_4_4_0",
          "202403_1_1_0",
          "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_5_5_0",
          "e4b6ac1c5d8f4f2aa1c3b2d4e5f60718_6_6_0"
        ],
        "gone" : [
          "weird"
        ]
      },
      "drop" : [

      ],
      "firstStep" : 0,
      "identity" : "hash_of_all_files",
      "keep" : [

      ],
      "killMutations" : [

      ],
      "partitionsDropped" : [

      ],
      "recreate" : true,
      "resequence" : [

      ],
      "table" : "hashed"
    },
    {
      "create" : false,
      "createDatabase" : false,
      "database" : "db",
      "download" : [

      ],
      "drop" : [

      ],
      "firstStep" : 0,
      "identity" : "hash_of_all_files",
      "keep" : [

      ],
      "killMutations" : [

      ],
      "partitionsDropped" : [

      ],
      "recreate" : false,
      "refused" : "the backup lists part 'bad/name', which is not a valid part name",
      "resequence" : [

      ],
      "table" : "invalid"
    },
    {
      "create" : false,
      "createDatabase" : false,
      "database" : "db",
      "download" : [

      ],
      "drop" : [

      ],
      "firstStep" : 0,
      "identity" : "hash_of_all_files",
      "keep" : [

      ],
      "killMutations" : [

      ],
      "partitionsDropped" : [

      ],
      "recreate" : false,
      "refused" : "the backup's data for 1 part(s) to restore is missing (all_1_1_0); nothing will be dropped from this table",
      "resequence" : [

      ],
      "table" : "missing"
    },
    {
      "create" : true,
      "createDatabase" : true,
      "database" : "new",
      "download" : [
        {
          "bytes" : 100,
          "disk" : "default",
          "identity" : "0123456789abcdef0123456789abcdef",
          "name" : "all_1_1_0",
          "partition" : "all"
        },
        {
          "bytes" : 100,
          "disk" : "fast",
          "identity" : "fedcba9876543210fedcba9876543210",
          "name" : "all_2_2_0",
          "partition" : "all"
        }
      ],
      "drop" : [

      ],
      "firstStep" : 0,
      "identity" : "hash_of_all_files",
      "keep" : [

      ],
      "killMutations" : [

      ],
      "partitionsDropped" : [

      ],
      "recreate" : false,
      "resequence" : [

      ],
      "table" : "created"
    }
  ]
}
"""#
}
