"""Everyday Korean sentences that both the STT scoring (export.stt.testspeech speaks them)
and the Kokoro calibration (export.tts.kokoro_stream) read: a module of their own, so
neither package imports the other for them."""

KOREAN = (
    "안녕하세요 오늘은 날씨가 정말 좋아서 공원에 산책하러 가고 싶어요",
    "내일 아침에 중요한 회의가 있어서 평소보다 일찍 일어나야 해요",
    "이 근처에 맛있는 한식당이 있으면 하나만 추천해 주시겠어요",
    "버스 정류장이 어디에 있는지 그리고 몇 번 버스를 타야 하는지 알려 주세요",
    "지난 주말에 가족들과 함께 바닷가에 가서 맛있는 회를 먹었어요",
    "저는 커피보다 녹차를 더 좋아하지만 오늘은 커피를 마시고 싶어요",
    "지하철역까지 걸어서 가면 시간이 얼마나 걸리는지 궁금해요",
    "도서관에서 역사에 관한 책을 몇 권 빌리고 싶은데 어떻게 해야 하나요",
    "어제 저녁에 친구와 영화를 보고 근처 식당에서 저녁을 먹었어요",
    "이 근처에 밤늦게까지 문을 여는 약국이 있는지 알고 싶어요",
    "방이 너무 추우니까 창문을 좀 닫아 주시면 정말 감사하겠습니다",
    "오늘 저녁에는 뭘 먹을지 아직 정하지 못해서 고민하고 있어요",
    "아침부터 비가 많이 와서 집에서 우산을 챙겨 가지고 나왔어요",
    "다음 주에는 친구들과 함께 부산으로 여행을 갈 계획이에요",
    "일하는 중에 컴퓨터가 갑자기 꺼져서 깜짝 놀랐고 너무 당황했어요",
    "어머니 생신이라서 백화점에서 예쁜 스카프를 선물로 샀어요",
    "사무실 프린터에 종이가 다 떨어져서 새로 주문해야 할 것 같아요",
    "내일 새벽 비행기를 타야 해서 공항까지 택시를 타고 가려고 해요",
    "감기에 걸려서 목이 너무 아파서 오늘 오후에 병원에 다녀왔어요",
    "우리 집 고양이는 하루 종일 소파 위에서 햇볕을 쬐며 자고 있어요",
)
"""Twenty everyday Korean sentences, 4-5.4 s as the Kokoro voice speaks them: Hangul only,
so the reference is exactly what is said (no numbers to read one way or another)."""
